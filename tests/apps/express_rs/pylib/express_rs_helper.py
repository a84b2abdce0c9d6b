VALUE = "from --python-path"
