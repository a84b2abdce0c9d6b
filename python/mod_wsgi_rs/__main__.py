"""python -m mod_wsgi_rs: the same as mod_wsgi_rs-express."""

from .express import main

main()
