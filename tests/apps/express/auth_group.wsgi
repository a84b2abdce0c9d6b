# --auth-group-script: alice and carol are editors, bob is not. Group names
# as bytes (what mod_wsgi's documentation shows) and as str.
GROUPS = {
    "alice": [b"editors", b"staff"],
    "bob": [b"staff"],
    "carol": ["staff", "editors"],
}


def groups_for_user(environ, user):
    print("express-app: groups_for_user user=%s" % user)
    return GROUPS.get(user, [])
