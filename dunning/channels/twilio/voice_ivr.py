"""The call's keypad steps before and after the debt is mentioned: right-party check, promise.

1. Identity first (US 15 USC 1692c(b), CN third-party rules): the call opens with a prompt that
   names neither the creditor nor the debt and asks for the last four digits of the account
   (``/twilio/identity``). No answer (the Gather times out into the Redirect) is ``unverified``;
   wrong digits are ``wrong_party``. Both get :func:`undisclosed_twiml`, which says nothing
   about a debt, an amount or who is calling.
2. The right party hears the greeting and the menu (dunning/channels/twilio/voice.py); key 3
   there asks for the day of a promise to pay as four digits, month and day (``/twilio/promise``).
"""

from __future__ import annotations

from datetime import date

from twilio.twiml.voice_response import VoiceResponse

from dunning.intents import ContactIntent
from dunning.promise_replies import MAX_PROMISE_DAYS

__all__ = [
    "PROMISE_KEY",
    "expected_digits",
    "identity_twiml",
    "promise_answer_twiml",
    "promise_prompt_twiml",
    "undisclosed_twiml",
]

PROMISE_KEY = "3"
_IDENTITY_DIGITS = 4
_TEXT = {
    "zh-CN": {
        "identity": "您好，这是一通给{name}的来电。请输入您账号的最后{n}位数字。",
        "undisclosed": "抱歉，我们无法确认您的身份。我们稍后再联系。再见。",
        "menu_promise": "承诺还款日期请按3。",
        "promise_prompt": "请输入您承诺还款的日期，月和日共四位数字，例如十二月十日输入1210。",
        "promise_ok": "谢谢。我们已记录您承诺于{month}月{day}日前还款。再见。",
        "promise_bad": "这个日期无效，日期须在今后{limit}天内。请稍后致电我们。再见。",
    },
    "en-US": {
        "identity": "Hello, this call is for {name}. Please enter the last {n} digits of your "
        "account number.",
        "undisclosed": "Sorry, we could not confirm who we are speaking with. We will try "
        "again later. Goodbye.",
        "menu_promise": "Press 3 to promise a payment date.",
        "promise_prompt": "Please enter the day you will pay as four digits, month and day. "
        "For December tenth, enter 1 2 1 0.",
        "promise_ok": "Thank you. We have noted your promise to pay by {month}/{day}. Goodbye.",
        "promise_bad": "That day is not valid; it must be within the next {limit} days. "
        "Please call us later. Goodbye.",
    },
}


def text(locale: str, key: str) -> str:
    return _TEXT.get(locale, _TEXT["en-US"])[key]


def expected_digits(intent: ContactIntent) -> str:
    """The digits the right party keys: the last four of the account number as the book has
    it (fewer when the account number has fewer digits)."""
    digits = "".join(c for c in intent.account_id if c.isascii() and c.isdigit())
    return digits[-_IDENTITY_DIGITS:]


def _url(webhook_public_url: str, path: str, intent: ContactIntent) -> str:
    return f"{webhook_public_url.rstrip('/')}{path}?intent_id={intent.intent_id}"


def identity_twiml(intent: ContactIntent, *, webhook_public_url: str) -> str:
    """The call's opening: ask for the account digits; a silent callee is redirected as
    unverified. Names only the person called for, never the creditor or the debt."""
    locale = intent.template.locale
    wanted = expected_digits(intent)
    action = _url(webhook_public_url, "/twilio/identity", intent)
    response = VoiceResponse()
    if not wanted:  # nothing the callee could key: never disclose
        return undisclosed_twiml(locale)
    first_name = intent.recipient.name
    prompt = text(locale, "identity").format(name=first_name, n=len(wanted))
    gather = response.gather(num_digits=len(wanted), action=action, method="POST", timeout=8)
    gather.say(prompt, language=locale)
    response.redirect(action, method="POST")  # no digits: the webhook records unverified
    return str(response)


def undisclosed_twiml(locale: str) -> str:
    """For a callee who did not confirm: no debt, no amount, no creditor, then hang up."""
    response = VoiceResponse()
    response.say(text(locale, "undisclosed"), language=locale)
    response.hangup()
    return str(response)


def promise_prompt_twiml(intent: ContactIntent, *, webhook_public_url: str) -> str:
    """After key 3: ask for the day as MMDD; no answer hangs up."""
    locale = intent.template.locale
    response = VoiceResponse()
    gather = response.gather(
        num_digits=4,
        action=_url(webhook_public_url, "/twilio/promise", intent),
        method="POST",
        timeout=10,
    )
    gather.say(text(locale, "promise_prompt"), language=locale)
    response.hangup()
    return str(response)


def promise_answer_twiml(locale: str, day: date | None) -> str:
    """The answer to a keyed day: noted (with the day), or not valid."""
    response = VoiceResponse()
    if day is None:
        said = text(locale, "promise_bad").format(limit=MAX_PROMISE_DAYS)
    else:
        said = text(locale, "promise_ok").format(month=day.month, day=day.day)
    response.say(said, language=locale)
    response.hangup()
    return str(response)
