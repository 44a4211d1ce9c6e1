"""Telegram, the second channel, against a loopback fake of the Bot API
(tests/helpers/fake_telegram.py): linking a chat by its one-time deep link, notices sent
there, Telegram's rate limit respected, a chat that blocked the bot forgotten."""

from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.cache import cache

from kibo import telegram
from kibo.models import TelegramChat
from kibo.notices import compose, notice_deliver
from tests.factories import make_ally

pytestmark = pytest.mark.django_db

CHAT = 424242


@pytest.fixture
def bot(fake_telegram, settings):
    settings.KIBO_TELEGRAM_BOT_TOKEN = fake_telegram.token
    settings.KIBO_TELEGRAM_API_URL = fake_telegram.base_url
    settings.KIBO_SITE_URL = "https://kibo.example"
    return fake_telegram


def link(client, bot, ally) -> str:
    client.force_login(ally)
    response = client.post("/account/telegram/")
    assert response.status_code == 302
    deep_link = urlsplit(response["Location"])
    assert (deep_link.scheme, deep_link.netloc, deep_link.path) == (
        "https",
        "t.me",
        "/kibo_test_bot",
    )
    return parse_qs(deep_link.query)["start"][0]


def test_an_ally_links_telegram_with_a_one_time_link(client, bot):
    ally = make_ally()
    token = link(client, bot, ally)
    # when the ally taps Start in Telegram, and beat reads the bot's updates
    bot.user_sends(CHAT, f"/start {token}")
    assert telegram.updates_read() == 1
    # then the chat is linked, and the bot says so in the page's language
    chat = TelegramChat.objects.get(user=ally)
    assert (chat.chat_id, chat.language) == (CHAT, "en")
    assert bot.sent_to(CHAT)[-1].text.startswith("Linked.")
    # and the same link used again (by someone else) links nothing; the bot answers in
    # that person's Telegram language
    bot.user_sends(CHAT + 1, f"/start {token}", language_code="en")
    telegram.updates_read()
    assert not TelegramChat.objects.filter(chat_id=CHAT + 1).exists()
    assert "expired or was used" in bot.sent_to(CHAT + 1)[-1].text
    bot.user_sends(CHAT + 2, "/start", language_code="es-BO")
    telegram.updates_read()
    assert "abre Kibo" in bot.sent_to(CHAT + 2)[-1].text
    # read updates are confirmed: reading again acts on nothing twice
    assert telegram.updates_read() == 0
    # the board's panel shows it linked; /stop in the chat unlinks
    assert "Telegram is linked" in client.get("/account/devices/").content.decode()
    bot.user_sends(CHAT, "/stop")
    telegram.updates_read()
    assert not TelegramChat.objects.filter(user=ally).exists()


def test_a_notice_goes_to_the_linked_chat_with_a_button_to_kibo(bot):
    ally = make_ally()
    bot.user_sends(CHAT, "hola")  # Telegram knows the chat once its person wrote to the bot
    TelegramChat.objects.create(user=ally, chat_id=CHAT, language="es")
    notice = compose("test", lambda: ("Pedido nuevo", "Recibes 10 USDT"), url="/ally/", tag="t")

    left = notice_deliver(notice=notice, user_ids=[str(ally.pk)])

    assert left.chats == []
    (message,) = bot.sent_to(CHAT)
    assert message.text == "Pedido nuevo\nRecibes 10 USDT"
    assert message.button_urls == ["https://kibo.example/ally/"]


def test_telegrams_rate_limit_holds_the_rest_back_for_as_long_as_it_asks(bot):
    allies = [make_ally() for _ in range(3)]
    for n, ally in enumerate(allies):
        bot.user_sends(CHAT + n, "hola")
        TelegramChat.objects.create(user=ally, chat_id=CHAT + n, language="es")
    bot.limit(1, retry_after=7)
    notice = compose("test-429", lambda: ("T", "B"), url="/", tag="t")

    left = notice_deliver(notice=notice, user_ids=[str(a.pk) for a in allies])

    # the first answer was 429: nothing more is sent in this try, and the retry waits 7 s
    assert sorted(left.chats) == sorted(str(a.pk) for a in allies)
    assert left.retry_after == 7
    assert bot.sent == []
    # the retry sends to all
    users = [str(a.pk) for a in allies]
    again = notice_deliver(notice=notice, user_ids=users, device_ids=[], chat_user_ids=left.chats)
    assert again.chats == [] and len(bot.sent) == 3


def test_a_chat_that_blocked_the_bot_is_unlinked(bot):
    ally = make_ally()
    bot.user_sends(CHAT, "hola")
    bot.block(CHAT)
    TelegramChat.objects.create(user=ally, chat_id=CHAT, language="es")
    notice = compose("test-gone", lambda: ("T", "B"), url="/", tag="t")

    assert notice_deliver(notice=notice, user_ids=[str(ally.pk)]).chats == []
    assert not TelegramChat.objects.filter(user=ally).exists()


def test_without_a_bot_token_nothing_of_telegram_shows(client):
    client.force_login(make_ally())
    assert "Telegram" not in client.get("/account/devices/").content.decode()
    assert client.post("/account/telegram/").status_code == 404


def test_one_reader_at_a_time(bot):
    bot.user_sends(CHAT, "/start")
    cache.add(telegram.READING_KEY, 1, 60)  # another run is reading
    assert telegram.updates_read() == 0
    cache.delete(telegram.READING_KEY)
    assert telegram.updates_read() == 1
