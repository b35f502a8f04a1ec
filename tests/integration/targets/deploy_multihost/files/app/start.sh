#!/bin/sh
# A version listed in APP_BROKEN (a host variable) starts but never answers on that host: the
# start succeeds there and the health check of the deploy fails.
for broken in $APP_BROKEN; do
    if [ "$broken" = "$APP_VERSION" ]; then
        echo "webapp $APP_VERSION: broken on this host, not listening" >&2
        exec sleep 86400
    fi
done
exec httpd -f -p "127.0.0.1:$PORT" -h /www
