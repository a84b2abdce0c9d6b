# --auth-user-script: Basic (check_password) and Digest (get_realm_hash).
import hashlib

USERS = {"alice": "wonderland", "bob": "builder", "carol": "singer"}


def check_password(environ, user, password):
    print("express-app: check_password user=%s uri=%s" % (user, environ.get("REQUEST_URI")))
    if user not in USERS:
        return None
    return USERS[user] == password


def get_realm_hash(environ, user, realm):
    print("express-app: get_realm_hash user=%s realm=%s" % (user, realm))
    if user not in USERS:
        return None
    text = "%s:%s:%s" % (user, realm, USERS[user])
    return hashlib.md5(text.encode("utf-8")).hexdigest()
