# Run by `busybox sh`: the image has no /bin/sh of its own.
# PORT lets a platform choose the port; httpd stays in the foreground (-f) so it is the container's process.
port="${PORT:-8080}"
echo "demo app: serving /www on port ${port}"
exec /bin/busybox httpd -f -v -p "${port}" -h /www
