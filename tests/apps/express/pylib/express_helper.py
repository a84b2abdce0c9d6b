# Imported from the directory given with --python-path. The reload test
# rewrites VALUE to see the process come back with the new code.
VALUE = "helper-v1"
