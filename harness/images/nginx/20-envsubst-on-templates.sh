#!/bin/sh
# As the official image's script of the same name (http templates only):
# every $NGINX_ENVSUBST_TEMPLATE_DIR/**/*$NGINX_ENVSUBST_TEMPLATE_SUFFIX
# (default /etc/nginx/templates/*.template) is rendered with envsubst, for
# the variables defined in the environment only, into
# $NGINX_ENVSUBST_OUTPUT_DIR (default /etc/nginx/conf.d). Not supported:
# *.stream-template.
set -e
ME=$(basename "$0")
say() { [ -n "${NGINX_ENTRYPOINT_QUIET_LOGS:-}" ] || echo "$ME: $*"; }

template_dir="${NGINX_ENVSUBST_TEMPLATE_DIR:-/etc/nginx/templates}"
suffix="${NGINX_ENVSUBST_TEMPLATE_SUFFIX:-.template}"
output_dir="${NGINX_ENVSUBST_OUTPUT_DIR:-/etc/nginx/conf.d}"
filter="${NGINX_ENVSUBST_FILTER:-}"

[ -d "$template_dir" ] || exit 0
if [ ! -w "$output_dir" ]; then
    say "ERROR: $template_dir exists, but $output_dir is not writable"
    exit 0
fi
# shellcheck disable=SC2016,SC2046  # literal ${NAME} list, one word per name
defined_envs=$(printf '${%s} ' $(awk "END { for (name in ENVIRON) { print ( name ~ /${filter}/ ) ? name : \"\" } }" </dev/null))
find "$template_dir" -follow -type f -name "*$suffix" -print | while read -r template; do
    relative_path="${template#"$template_dir/"}"
    output_path="$output_dir/${relative_path%"$suffix"}"
    mkdir -p "$(dirname "$output_path")"
    say "Running envsubst on $template to $output_path"
    envsubst "$defined_envs" <"$template" >"$output_path"
done
exit 0
