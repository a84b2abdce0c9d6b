# mod_wsgi_rs in the official httpd:2.4 image (its layout: /usr/local/apache2
# with bin/apxs, modules/, conf/httpd.conf). `make test-httpd-layout` runs
# the same steps against an Apache built the way this image is built.
#
#   docker build -t httpd-wsgi-rs .
#   docker run --rm -p 8080:80 httpd-wsgi-rs      # http://127.0.0.1:8080/
#
# Stage 1 builds the module against the image's own headers (its apxs); the
# image removed the APR headers and compilers it was built with, so they
# come back here only.
FROM httpd:2.4 AS build
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends \
        ca-certificates curl gcc libc6-dev make perl \
        libapr1-dev libaprutil1-dev python3-dev libclang-dev; \
    rm -rf /var/lib/apt/lists/*
RUN curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
ENV PATH=/root/.cargo/bin:$PATH
WORKDIR /src
COPY . .
RUN set -eux; \
    make install APXS=/usr/local/apache2/bin/apxs PYTHON=/usr/bin/python3; \
    python3 -c 'import sysconfig; print("libpython" + sysconfig.get_config_var("LDVERSION"))' > /libpython-package

# Stage 2: the plain image, the module, the libpython it links (with its
# standard library) and a sample app in daemon mode.
FROM httpd:2.4
COPY --from=build /libpython-package /tmp/
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends "$(cat /tmp/libpython-package)"; \
    rm -rf /var/lib/apt/lists/* /tmp/libpython-package
COPY --from=build /usr/local/apache2/modules/mod_wsgi_rs.so /usr/local/apache2/modules/
COPY conf-examples/hello.wsgi /usr/local/apache2/wsgi/hello.wsgi
RUN { \
      echo 'LoadModule wsgi_module modules/mod_wsgi_rs.so'; \
      echo 'WSGIDaemonProcess app processes=2 threads=15 display-name=%{GROUP}'; \
      echo 'WSGIProcessGroup app'; \
      echo 'WSGIScriptAlias / /usr/local/apache2/wsgi/hello.wsgi'; \
      echo '<Directory /usr/local/apache2/wsgi>'; \
      echo '    Require all granted'; \
      echo '</Directory>'; \
    } >> /usr/local/apache2/conf/httpd.conf; \
    httpd -t
