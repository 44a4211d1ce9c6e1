"""The fake Telegram Bot API (tests/helpers/fake_telegram.py) answers plain HTTP calls in
Telegram's shapes, and refuses what Telegram refuses: each answer is shown with a call
that earns it."""

import json
import threading
import time

import httpx
import pytest

from tests.helpers.fake_telegram import FakeTelegram

CHAT = 5550001


def call(telegram: FakeTelegram, method: str, *, token: str | None = None, **params):
    """A Bot API call as Kibo makes it: POST {base}/bot{token}/{method} with a JSON body."""
    url = f"{telegram.base_url}/bot{token or telegram.token}/{method}"
    return httpx.post(url, json=params, timeout=10)


def test_get_me_answers_the_bot(fake_telegram):
    response = call(fake_telegram, "getMe")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    bot = response.json()["result"]
    assert response.json()["ok"] is True
    assert (bot["is_bot"], bot["first_name"], bot["username"]) == (True, "Kibo", "kibo_test_bot")
    assert bot["id"] == int(fake_telegram.token.split(":")[0])


def test_a_start_from_a_deep_link_is_read_and_then_confirmed_by_the_offset(fake_telegram):
    # given a user who followed t.me/kibo_test_bot?start=ally-42
    fake_telegram.user_sends(CHAT, "/start ally-42", first_name="Rosa", username="rosa_bo")
    # when the bot polls
    (update,) = call(fake_telegram, "getUpdates").json()["result"]
    # then it reads the message as Telegram shapes it
    message = update["message"]
    assert message["text"] == "/start ally-42"
    assert message["chat"] == {
        "id": CHAT,
        "first_name": "Rosa",
        "username": "rosa_bo",
        "type": "private",
    }
    assert message["from"]["id"] == CHAT and message["from"]["is_bot"] is False
    assert message["entities"] == [{"offset": 0, "length": 6, "type": "bot_command"}]
    assert abs(message["date"] - time.time()) < 5
    # and the update stays until an offset past it confirms it
    assert call(fake_telegram, "getUpdates").json()["result"] == [update]
    assert call(fake_telegram, "getUpdates", offset=update["update_id"] + 1).json() == {
        "ok": True,
        "result": [],
    }
    assert fake_telegram.pending_updates == []


def test_limit_and_offsets_pick_updates_as_telegram_does(fake_telegram):
    # given four messages
    first, *_ = [fake_telegram.user_sends(CHAT, text) for text in ("one", "two", "three", "four")]

    def texts(**params) -> list[str]:
        updates = call(fake_telegram, "getUpdates", **params).json()["result"]
        return [update["message"]["text"] for update in updates]

    # then limit takes the oldest, an offset confirms those before it, a negative offset
    # keeps only the last ones, and update ids grow by one
    assert texts(limit=2) == ["one", "two"]
    assert texts(offset=first["update_id"] + 1) == ["two", "three", "four"]
    assert texts(offset=-1) == ["four"]
    assert texts() == ["four"]
    assert fake_telegram.pending_updates[0]["update_id"] == first["update_id"] + 3


def test_a_long_poll_answers_as_soon_as_a_user_writes(fake_telegram):
    # given a bot waiting on a long poll, and a user who writes a moment later
    writer = threading.Timer(0.2, fake_telegram.user_sends, args=(CHAT, "hola"))
    writer.start()
    started = time.monotonic()
    # when the poll returns
    updates = call(fake_telegram, "getUpdates", timeout=10).json()["result"]
    waited = time.monotonic() - started
    writer.join()
    # then it brought the message, not the end of the wait
    assert [update["message"]["text"] for update in updates] == ["hola"]
    assert 0.15 < waited < 1.5


def test_a_long_poll_waits_no_longer_than_the_cap():
    with FakeTelegram(max_poll_seconds=0.3) as telegram:
        started = time.monotonic()
        assert call(telegram, "getUpdates", timeout=50).json()["result"] == []
        capped = time.monotonic() - started
        started = time.monotonic()
        call(telegram, "getUpdates")
        short = time.monotonic() - started
    assert 0.25 < capped < 1.5
    assert short < 0.2


def test_a_second_poller_ends_the_first_with_409(fake_telegram):
    # given a long poll under way
    answers = []
    first = threading.Thread(
        target=lambda: answers.append(call(fake_telegram, "getUpdates", timeout=2))
    )
    first.start()
    time.sleep(0.2)
    # when a second bot instance polls too
    second = call(fake_telegram, "getUpdates")
    first.join()
    # then the first is terminated, as Telegram does with two instances of one bot
    assert second.status_code == 200
    assert answers[0].status_code == 409
    assert (
        answers[0]
        .json()["description"]
        .startswith("Conflict: terminated by other getUpdates request")
    )


def test_allowed_updates_applies_to_the_updates_that_come_after(fake_telegram):
    # given a chat whose user blocks the bot (a my_chat_member update)
    fake_telegram.user_sends(CHAT, "hola")
    # when the bot asks for messages only, then the user blocks it and writes again
    call(fake_telegram, "getUpdates", allowed_updates=["message"])
    fake_telegram.block(CHAT)
    fake_telegram.user_sends(CHAT, "otra vez")
    kinds = [set(u) - {"update_id"} for u in call(fake_telegram, "getUpdates").json()["result"]]
    # then only messages were kept; an empty list asks for the default types again
    assert kinds == [{"message"}, {"message"}]
    call(fake_telegram, "getUpdates", allowed_updates=[], offset=-1)
    fake_telegram.block(CHAT)
    (update,) = call(fake_telegram, "getUpdates", offset=-1).json()["result"]
    assert update["my_chat_member"]["new_chat_member"]["status"] == "kicked"


def test_send_message_to_a_chat_that_wrote_is_recorded_and_answered(fake_telegram):
    # given a user who started the bot
    fake_telegram.user_sends(CHAT, "/start", first_name="Rosa")
    # when the bot answers with HTML, a URL button and no link preview
    keyboard = {"inline_keyboard": [[{"text": "Ver orden", "url": "https://kibo.example/o/7"}]]}
    response = call(
        fake_telegram,
        "sendMessage",
        chat_id=CHAT,
        text="Orden <b>#7</b> pagada &amp; lista",
        parse_mode="HTML",
        reply_markup=keyboard,
        link_preview_options={"is_disabled": True},
    )
    # then Telegram answers with the message as the user sees it
    assert response.status_code == 200
    result = response.json()["result"]
    assert result["text"] == "Orden #7 pagada & lista"
    assert result["chat"] == {"id": CHAT, "first_name": "Rosa", "type": "private"}
    assert result["from"]["username"] == "kibo_test_bot"
    assert result["message_id"] == 2  # the user's /start was 1 in this chat
    assert result["reply_markup"] == keyboard
    # and the test reads what was sent
    (sent,) = fake_telegram.sent_to(CHAT)
    assert sent.text == "Orden <b>#7</b> pagada &amp; lista"
    assert sent.plain_text == result["text"]
    assert (sent.parse_mode, sent.link_preview_disabled) == ("HTML", True)
    assert sent.button_urls == ["https://kibo.example/o/7"]
    assert fake_telegram.sent_to(CHAT + 1) == []


def test_a_chat_that_never_wrote_to_the_bot_is_not_found(fake_telegram):
    response = call(fake_telegram, "sendMessage", chat_id=CHAT, text="hola")
    assert response.status_code == 400
    assert response.json() == {
        "ok": False,
        "error_code": 400,
        "description": "Bad Request: chat not found",
    }
    assert fake_telegram.sent == []


def test_a_chat_that_blocked_the_bot_is_forbidden_until_the_user_writes_again(fake_telegram):
    # given a user who blocked the bot
    fake_telegram.user_sends(CHAT, "/start")
    fake_telegram.block(CHAT)
    # when the bot sends to them
    blocked = call(fake_telegram, "sendMessage", chat_id=CHAT, text="hola")
    # then Telegram forbids it, and the bot heard of the block
    assert blocked.status_code == 403
    assert blocked.json() == {
        "ok": False,
        "error_code": 403,
        "description": "Forbidden: bot was blocked by the user",
    }
    updates = call(fake_telegram, "getUpdates").json()["result"]
    change = updates[-1]["my_chat_member"]
    assert (change["old_chat_member"]["status"], change["new_chat_member"]["status"]) == (
        "member",
        "kicked",
    )
    # and once the user writes again (which unblocks), sends go through
    fake_telegram.user_sends(CHAT, "/start")
    assert call(fake_telegram, "sendMessage", chat_id=CHAT, text="hola").status_code == 200
    assert len(fake_telegram.sent) == 1


def test_a_wrong_token_is_unauthorized_and_an_unknown_method_not_found(fake_telegram):
    wrong = call(fake_telegram, "getMe", token="7000000001:AAHsomeoneElsesToken")
    unknown = call(fake_telegram, "sendTelegram")
    assert (wrong.status_code, wrong.json()) == (
        401,
        {"ok": False, "error_code": 401, "description": "Unauthorized"},
    )
    assert (unknown.status_code, unknown.json()) == (
        404,
        {"ok": False, "error_code": 404, "description": "Not Found"},
    )
    # method names are not case-sensitive on Telegram
    assert call(fake_telegram, "getme").status_code == 200


def test_flood_control_answers_429_and_the_calls_show_whether_the_caller_waited(
    fake_telegram,
):
    # given Telegram's flood control on the next send
    fake_telegram.user_sends(CHAT, "/start")
    fake_telegram.limit(1, retry_after=1)
    # when the bot sends, is told to wait, waits and retries
    limited = call(fake_telegram, "sendMessage", chat_id=CHAT, text="uno")
    retry_after = limited.json()["parameters"]["retry_after"]
    time.sleep(retry_after)
    retried = call(fake_telegram, "sendMessage", chat_id=CHAT, text="uno")
    # then the first was refused in Telegram's words, the retry went through
    assert limited.status_code == 429
    assert limited.json() == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 1",
        "parameters": {"retry_after": 1},
    }
    assert retried.status_code == 200
    # and the calls show the wait between them
    first, second = [c for c in fake_telegram.calls if c.method == "sendMessage"]
    assert (first.status, second.status) == (429, 200)
    assert second.at - first.at >= 1


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("Pago <div>listo</div>", 'Unsupported start tag "div" at byte offset 5'),
        ("Pago <b>listo", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b>Pago <i>listo</b></i>", 'expected "</i>", found "</b>"'),
        ("Monto < 10 Bs", 'Unsupported start tag "" at byte offset 6'),
        ("Orden <a href='x'>7", "Can't find end tag"),
    ],
    ids=["unknown tag", "unclosed", "crossed", "bare less-than", "unclosed link"],
)
def test_html_telegram_cannot_parse_is_refused(fake_telegram, text, error):
    fake_telegram.user_sends(CHAT, "/start")
    response = call(fake_telegram, "sendMessage", chat_id=CHAT, text=text, parse_mode="HTML")
    assert response.status_code == 400
    assert response.json()["description"].startswith("Bad Request: can't parse entities: ")
    assert error in response.json()["description"]
    assert fake_telegram.sent == []


def test_html_with_escapes_and_nested_tags_reads_as_plain_text(fake_telegram):
    fake_telegram.user_sends(CHAT, "/start")
    text = "Monto &lt; 10 &#66;s, <b>total <i>35</i></b> &copy;"
    response = call(fake_telegram, "sendMessage", chat_id=CHAT, text=text, parse_mode="HTML")
    assert response.json()["result"]["text"] == "Monto < 10 Bs, total 35 &copy;"


@pytest.mark.parametrize(
    ("text", "accepted", "plain_or_error"),
    [
        ("Orden *\\#7* pagada\\.", True, "Orden #7 pagada."),
        ("Ver [la orden](https://kibo.example/o/7\\)) ya", True, "Ver la orden ya"),
        ("Codigo `a.b\\`c`", True, "Codigo a.b`c"),
        ("Orden #7 pagada.", False, "Character '#' is reserved"),
        ("Orden *7 pagada", False, "Can't find end of Bold entity at byte offset 6"),
        ("Monto 1-2", False, "Character '-' is reserved"),
    ],
)
def test_markdown_v2_needs_its_reserved_characters_escaped(
    fake_telegram, text, accepted, plain_or_error
):
    fake_telegram.user_sends(CHAT, "/start")
    response = call(fake_telegram, "sendMessage", chat_id=CHAT, text=text, parse_mode="MarkdownV2")
    if accepted:
        assert response.json()["result"]["text"] == plain_or_error
    else:
        assert response.status_code == 400
        assert plain_or_error in response.json()["description"]


def test_a_parse_mode_telegram_does_not_know_is_refused(fake_telegram):
    fake_telegram.user_sends(CHAT, "/start")
    response = call(fake_telegram, "sendMessage", chat_id=CHAT, text="x", parse_mode="Textile")
    assert response.json()["description"] == "Bad Request: unsupported parse_mode"


@pytest.mark.parametrize(
    ("button", "error"),
    [
        ({"text": "Abrir", "url": "http://localhost:8000/o/7"}, "is invalid: Wrong HTTP URL"),
        ({"text": "Abrir", "url": "ftp://kibo.example/o/7"}, "Unsupported URL protocol"),
        ({"text": "Abrir"}, "Text buttons are unallowed in the inline keyboard"),
        ({"url": "https://kibo.example"}, 'Field "text" must be of type String'),
        ({"text": "Ok", "callback_data": "x" * 65}, "BUTTON_DATA_INVALID"),
    ],
    ids=["localhost", "ftp", "no action", "no text", "long callback data"],
)
def test_inline_keyboard_buttons_are_checked(fake_telegram, button, error):
    fake_telegram.user_sends(CHAT, "/start")
    response = call(
        fake_telegram,
        "sendMessage",
        chat_id=CHAT,
        text="Orden 7",
        reply_markup={"inline_keyboard": [[button]]},
    )
    assert response.status_code == 400
    assert error in response.json()["description"]


def test_text_that_is_empty_or_too_long_is_refused(fake_telegram):
    fake_telegram.user_sends(CHAT, "/start")
    empty = call(fake_telegram, "sendMessage", chat_id=CHAT, text="<b> </b>", parse_mode="HTML")
    longest = call(fake_telegram, "sendMessage", chat_id=CHAT, text="x" * 4096)
    too_long = call(fake_telegram, "sendMessage", chat_id=CHAT, text="x" * 4097)
    assert empty.json()["description"] == "Bad Request: message text is empty"
    assert longest.status_code == 200
    assert too_long.json()["description"] == "Bad Request: message is too long"


def test_form_and_query_parameters_are_read_as_telegram_reads_them(fake_telegram):
    # given a client that posts a form, objects JSON-encoded, as many Telegram libraries do
    fake_telegram.user_sends(CHAT, "/start")
    keyboard = {"inline_keyboard": [[{"text": "Ver", "url": "https://kibo.example/o/7"}]]}
    url = f"{fake_telegram.base_url}/bot{fake_telegram.token}/sendMessage"
    form = {"chat_id": str(CHAT), "text": "hola", "reply_markup": json.dumps(keyboard)}
    # when it sends with a form, and with a GET query
    posted = httpx.post(url, data=form | {"disable_web_page_preview": "true"})
    queried = httpx.get(url, params={"chat_id": CHAT, "text": "otra"})
    # then both are read
    assert (posted.status_code, queried.status_code) == (200, 200)
    first, second = fake_telegram.sent
    assert (first.reply_markup, first.link_preview_disabled) == (keyboard, True)
    assert (second.text, second.link_preview_disabled) == ("otra", False)


def test_wait_for_sent_returns_as_the_bot_sends_and_fails_when_it_does_not(fake_telegram):
    # given a bot that answers a moment later, from another thread
    fake_telegram.user_sends(CHAT, "/start")
    bot = threading.Timer(
        0.1,
        call,
        args=(fake_telegram, "sendMessage"),
        kwargs={
            "chat_id": CHAT,
            "text": "hola",
        },
    )
    bot.start()
    # when the test waits for it
    (sent,) = fake_telegram.wait_for_sent(1, timeout=5)
    returned_at = time.monotonic()
    bot.join()
    # then it returns as the message is sent, and a second one never comes
    assert sent.text == "hola"
    assert returned_at - sent.sent_at < 1
    with pytest.raises(AssertionError, match="1 of 2 messages were sent"):
        fake_telegram.wait_for_sent(2, timeout=0.2)


def test_reset_forgets_chats_updates_and_messages(fake_telegram):
    # given a test's chat, update, message and limit
    fake_telegram.user_sends(CHAT, "/start")
    call(fake_telegram, "sendMessage", chat_id=CHAT, text="hola")
    fake_telegram.limit(1)
    # when the fake is reset for the next test
    fake_telegram.reset()
    # then none of it remains: the chat is unknown again, not rate limited
    assert (fake_telegram.sent, fake_telegram.calls, fake_telegram.pending_updates) == ([], [], [])
    response = call(fake_telegram, "sendMessage", chat_id=CHAT, text="hola")
    assert response.json()["description"] == "Bad Request: chat not found"
