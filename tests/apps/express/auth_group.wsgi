# --auth-group-script: alice is an editor, bob is not.
GROUPS = {"alice": [b"editors", b"staff"], "bob": [b"staff"]}


def groups_for_user(environ, user):
    print("express-app: groups_for_user user=%s" % user)
    return GROUPS.get(user, [])
