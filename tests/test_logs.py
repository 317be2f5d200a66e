"""No password and no Authorization header value in any log record of the suite.

conftest.py keeps every record of the session (and `chalice local`'s output
from tests/routes/test_fuzz.py) and runs this file last, so the check covers every
request the suite made: good and bad credentials, rotations, faults.
"""

from __future__ import annotations

import logging

from tests.support import LOG_CAPTURE, USERS, basic
from tools import local_stack

PASSWORDS = sorted({password for password, _ in USERS.values()} | {local_stack.DB_PASSWORD})
TOKENS = sorted(basic(user, password)["Authorization"].split(" ", 1)[1] for user, (password, _) in USERS.items())


def leaks(messages: list[str], secrets: list[str]) -> list[tuple[str, str]]:
    """(secret, message) for every message holding one of ``secrets``."""
    return [(secret, message) for message in messages for secret in secrets if secret in message]


def test_the_leak_finder_finds_a_password_and_a_token():
    messages = ["ok", f"login apiuser/{PASSWORDS[0]} failed", f"header was Basic {TOKENS[0]}"]
    assert [secret for secret, _ in leaks(messages, PASSWORDS + TOKENS)] == [PASSWORDS[0], TOKENS[0]]


def test_no_log_record_of_the_suite_holds_a_credential():
    logging.getLogger("chalicelib.test_logs").info("capture check")
    assert any("capture check" in m for m in LOG_CAPTURE.messages), "the suite-wide log handler is not installed"
    found = leaks(LOG_CAPTURE.messages, PASSWORDS + TOKENS)
    assert not found, "credentials in the logs:\n" + "\n".join(f"{s!r} in {m[:300]!r}" for s, m in found[:10])
