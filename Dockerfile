# The action's image, for the tests and for the release alike. Released versions name it by digest in
# action.yml (scripts/release); main's action.yml builds it (image: Dockerfile).
# The base is made by stack/base_image.py (`python -m stack.base_image`): Debian bookworm minbase with
# Debian's Python 3.11, slimmed. Its tag is the hash of that recipe, and a test checks it matches.
ARG BASE_IMAGE=ecr-action-base/bookworm-python3:79db2e8f4a2b
FROM ${BASE_IMAGE}

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH

# The dependencies come first and alone, so a change to the code reuses this layer. A venv: Debian's own
# python3 refuses system-wide pip installs (PEP 668). Wheels only: the base has no compiler.
# Everything not needed at run time goes in the same RUN, or the layer would keep it: pip and setuptools,
# the venv's activation scripts, packages' tests, and botocore's models of the ~400 services the action
# never calls (most of the dependencies' size). botocore needs its top-level data files (endpoints,
# partitions, default configuration, retry rules) and the models of the clients made: ecr and sts.
# PyYAML's C parser goes too (2.7 MB): the ignore-file is read with the pure-Python SafeLoader, which
# PyYAML falls back to, and is a few lines long.
# The bytecode pip compiled is kept: without it every start compiles botocore again.
COPY requirements.lock /tmp/requirements.lock
RUN python3 -m venv /opt/venv \
    && pip install --no-cache-dir --require-hashes --only-binary=:all: -r /tmp/requirements.lock \
    && pip uninstall --yes --quiet pip setuptools \
    && rm /tmp/requirements.lock /opt/venv/bin/activate* /opt/venv/bin/Activate.ps1 \
    && find /opt/venv/lib/python3.11/site-packages/botocore/data -mindepth 1 -maxdepth 1 -type d \
        ! -name ecr ! -name sts -exec rm -rf {} + \
    && find /opt/venv -depth -type d -name tests -exec rm -rf {} + \
    && rm /opt/venv/lib/python3.11/site-packages/yaml/_yaml.*.so

COPY ecr_action/ /app/ecr_action/
COPY entrypoint.py /app/entrypoint.py
# The action's own bytecode, made once here instead of at every start (PYTHONDONTWRITEBYTECODE).
RUN python3 -m compileall -q /app

# No USER: the action drives the runner's Docker Engine through /var/run/docker.sock, which the runner
# mounts owned by root, so a non-root user could not build or push.
# Exec form: the runner passes inputs as INPUT_<NAME> variables whose names keep the input's hyphens; a
# shell in between would drop them, since they are not valid shell variable names.
ENTRYPOINT ["/opt/venv/bin/python", "/app/entrypoint.py"]
