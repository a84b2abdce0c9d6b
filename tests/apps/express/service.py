# The --service-script of tests/express.rs: a managed service in a daemon
# process of its own (threads=0). Like a real one it runs until the process
# is told to stop, which it sees as SystemExit, and says so in the log.
import time

import mod_wsgi

print("express-app: service started in process group %r" % mod_wsgi.process_group)
try:
    while True:
        time.sleep(0.1)
except SystemExit:
    print("express-app: service stopping (SystemExit)")
    raise
