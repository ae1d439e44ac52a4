"""Who is visiting: an owner id that survives a reload, and a role (visitor or instructor).

* Signed in (the host configured login, ``st.user.is_logged_in``): the owner id is a hash of
  the account's e-mail (or subject id), the same in every browser the person signs in from.
* Otherwise: a random token kept in a first-party cookie. Streamlit reads a browser's cookies
  when its websocket connects (``st.context.cookies``) and offers no server-side way to set
  one, so the page runs of a session without it write it with a one-line script in the app's
  own document (``st.html`` with JavaScript; SameSite=Strict, path=/, one year); the next
  reload sends it back. (``st.components.v1.html`` would do the same from a same-origin frame,
  but this Streamlit deprecates it; a query parameter would put the token in every copied link.) The owner id is a hash of the token, so
  neither the store nor a page ever holds the cookie's value itself. A token that is not the
  format this module writes is ignored (nobody can claim the owner id ``shared``).

Roles: on a laptop (not hosted) everyone is instructor, since it is their machine. On a hosted
server a visitor is instructor when signed in with an e-mail the host lists
(``RECSYS_INSTRUCTORS``) or after typing the host's instructor key on the Runs page (for
this browser session only).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

import streamlit as st

from recsys import hosting

COOKIE = "recsys_visitor"
COOKIE_MAX_AGE_S = 365 * 24 * 3600
VISITOR, INSTRUCTOR = "visitor", "instructor"
_TOKEN = re.compile(r"^[0-9a-f]{32}$")
_TOKEN_KEY, _INSTRUCTOR_KEY = "_visitor_token", "_instructor_signed_in"


def _hash(kind: str, value: str) -> str:
    return hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()[:32]


def _user() -> dict:
    """The signed-in account's claims, or {} when nobody is signed in (or login is not configured)."""
    try:
        if st.user.get("is_logged_in"):
            return dict(st.user)
    except Exception:  # no login configured, or an AppTest without a user
        pass
    return {}


def _cookie_token() -> str | None:
    try:
        token = st.context.cookies.get(COOKIE)
    except Exception:  # no browser connection (AppTest)
        return None
    return token if isinstance(token, str) and _TOKEN.match(token) else None


def _token() -> str:
    """This browser's token: from its cookie, else the one this session made (and asked it to keep)."""
    ss = st.session_state
    if _TOKEN_KEY not in ss:
        ss[_TOKEN_KEY] = _cookie_token() or secrets.token_hex(16)
    return ss[_TOKEN_KEY]


def owner_id() -> str:
    """The owner id of this visitor: their uploads, private runs and jobs are filed under it."""
    user = _user()
    account = str(user.get("email") or user.get("sub") or "").strip().lower()
    if account:
        return _hash("user", account)
    return token_owner(_token())


def token_owner(token: str) -> str:
    """The owner id of a browser token (never the token itself, so the store cannot leak it)."""
    return _hash("visitor", token)


def remember() -> None:
    """Ask the browser to keep this session's token (once per session, while it has not sent it back).

    ``st.html`` puts the script in the app's own document (no frame), so the cookie is first-party.
    """
    if _user() or _cookie_token() == _token():
        return
    # the token is 32 hex digits made here (never user input), so the script carries nothing a visitor wrote
    st.html(f"<script>document.cookie = '{COOKIE}={_token()}; path=/; max-age={COOKIE_MAX_AGE_S}; "
            "SameSite=Strict';</script>", unsafe_allow_javascript=True)


def is_instructor() -> bool:
    cfg = hosting.config()
    if not cfg.hosted:
        return True
    email = str(_user().get("email") or "").strip().lower()
    if email and email in cfg.instructors:
        return True
    return bool(st.session_state.get(_INSTRUCTOR_KEY))


def role() -> str:
    return INSTRUCTOR if is_instructor() else VISITOR


def sign_in_as_instructor(key: str) -> bool:
    """Grant this session the instructor role when ``key`` is the host's instructor key."""
    expected = hosting.config().instructor_key
    if not expected or not hmac.compare_digest(key.strip().encode(), expected.encode()):
        return False
    st.session_state[_INSTRUCTOR_KEY] = True
    return True


def signed_in_with_key() -> bool:
    return bool(st.session_state.get(_INSTRUCTOR_KEY))


def sign_out_instructor() -> None:
    st.session_state.pop(_INSTRUCTOR_KEY, None)
