"""Redis key names of the accounts domain, each defined once with its shape.

An account's keys share its tag `{acct:<id>}`; the by-email index lives under
the address's own tag, so getting or creating an account by email is two
single-slot steps (the index decides who owns the address, then the account
hash is filled idempotently: see accounts.store). Must not import anything
but the standard library.
"""

# {acct:<id>}                 HASH   id, email, name, roles (comma-separated), gen, created_at
# {acct:<id>}:sockets        SET    Socket.IO sids of the account's open connections (sign-out
#                                    closes them on whichever process holds them); 31 days
# {acctmail:<email>}          STRING account id owning that address (set once, NX)
# {signin:<sha256 of code>}   STRING JSON {email, next}; TTL SIGNIN_TTL_S; read with GETDEL
# {authrate:<kind>:<who>}     STRING a fixed-window counter (accounts.limits), PEXPIRE'd
# {mail}:outbox               ZSET   mail id by when it is next due (a claim pushes it out)
# {mail}:msg:<id>             HASH   to, subject, text, html, tries, created_at
# {mail}:sent:<kind>:<ref>    STRING "1": a mail about `ref` was enqueued (receipts), 30 days


def account(account_id: str) -> str:
    return "{acct:" + account_id + "}"


def sockets(account_id: str) -> str:
    return account(account_id) + ":sockets"


def by_email(email: str) -> str:
    return "{acctmail:" + email + "}"


def signin_code(code_hash: str) -> str:
    return "{signin:" + code_hash + "}"


def rate(kind: str, who: str) -> str:
    return "{authrate:" + kind + ":" + who + "}"


OUTBOX = "{mail}:outbox"


def mail(mail_id: str) -> str:
    return "{mail}:msg:" + mail_id


def mail_sent(kind: str, ref: str) -> str:
    return "{mail}:sent:" + kind + ":" + ref
