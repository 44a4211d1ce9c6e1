"""Receipts through the production storage path: django-storages against a real S3 HTTP
server (moto's server mode on loopback), private, and served only by the checking views."""

import httpx
import pytest

from orders.models import OrderStatus
from tests.factories import make_ally, make_taken_order, make_user, png_upload

pytestmark = [pytest.mark.slow, pytest.mark.django_db]  # a real S3 server (moto)


def test_a_receipt_is_stored_privately_in_s3_and_served_only_to_who_may_see_it(
    s3, client, django_capture_on_commit_callbacks
):
    s3_client, bucket = s3
    order = make_taken_order()
    receipt = png_upload()
    client.force_login(order.ally)

    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(f"/ally/orders/{order.pk}/proof/", {"proof": receipt})

    assert response.status_code == 302
    order.refresh_from_db()
    assert order.status == OrderStatus.COMPLETED
    key = order.proof_file.name
    assert key.startswith("proofs/") and str(order.pk) not in key
    assert [o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket)["Contents"]] == [key]
    grants = s3_client.get_object_acl(Bucket=bucket, Key=key)["Grants"]
    assert [g["Permission"] for g in grants] == ["FULL_CONTROL"]
    assert all(g["Grantee"].get("Type") == "CanonicalUser" for g in grants)
    stored = s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()

    client.force_login(order.user)
    served = client.get(f"/orders/{order.pk}/proof/")
    assert served.status_code == 200 and b"".join(served.streaming_content) == stored

    client.force_login(make_user())
    assert client.get(f"/orders/{order.pk}/proof/").status_code == 404
    client.force_login(make_ally())
    assert client.get(f"/orders/{order.pk}/proof/").status_code == 404


def test_an_unsigned_request_for_a_receipt_gets_nothing(s3_server, s3):
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    _, bucket = s3
    name = default_storage.save("proofs/probe.png", ContentFile(b"\x89PNG probe"))
    response = httpx.get(f"{s3_server}/{bucket}/{name}")
    assert response.status_code == 403 and b"probe" not in response.content


def test_a_refused_receipt_leaves_the_bucket_as_it_was(s3, client):
    s3_client, bucket = s3
    order = make_taken_order()
    client.force_login(order.ally)
    response = client.post(
        f"/ally/orders/{order.pk}/proof/",
        {"proof": png_upload(name="receipt.pdf")},  # a PNG named .pdf
    )
    assert response.status_code == 422
    assert s3_client.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
