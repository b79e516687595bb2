#!/bin/sh
# Container entry point of the Envoy front door: render the template for this deployment, run Envoy.
# Replica addresses come from the environment (compose service names resolve to every replica):
#   IMGAPI_ENVOY_GATEWAYS="gateway:8080"  IMGAPI_ENVOY_CATALOGS="catalog:8501"  IMGAPI_ENVOY_BLOBS="blob:8502"
#   (space-separated host:port lists), IMGAPI_ENVOY_LISTEN (public REST listener, 0.0.0.0:8080),
#   IMGAPI_ENVOY_INTERNAL_LISTEN (gRPC + catalog JSON for gateways/replication, 0.0.0.0:8500: never
#   publish it), IMGAPI_ENVOY_ADMIN (127.0.0.1:9901: inside the container only).
set -eu
cd "$(dirname "$0")/../.."
args=""
for a in ${IMGAPI_ENVOY_GATEWAYS:-gateway:8080}; do args="$args --gateway $a"; done
for a in ${IMGAPI_ENVOY_CATALOGS:-catalog:8501}; do args="$args --catalog $a"; done
for a in ${IMGAPI_ENVOY_BLOBS:-blob:8502}; do args="$args --blob $a"; done
config=${IMGAPI_ENVOY_CONFIG:-/tmp/envoy.yaml}
# shellcheck disable=SC2086
python deploy/envoy/render.py $args \
  --listen "${IMGAPI_ENVOY_LISTEN:-0.0.0.0:8080}" \
  --internal-listen "${IMGAPI_ENVOY_INTERNAL_LISTEN:-0.0.0.0:8500}" \
  --admin "${IMGAPI_ENVOY_ADMIN:-127.0.0.1:9901}" \
  --descriptor "${IMGAPI_ENVOY_DESCRIPTOR:-$PWD/protos/imgapi/v1/imgapi.pb}" \
  -o "$config"
exec envoy -c "$config" --disable-hot-restart ${IMGAPI_ENVOY_FLAGS:-}
