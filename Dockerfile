# The image of both halves, on a slim Python: `eni-controller run` (the controller,
# the default command, as a non-root user) and `eni-controller agent` (the node
# agent: the chart's DaemonSet passes args ["agent"] and runs it as root with
# NET_ADMIN only, see agent.securityContext in the chart's values.yaml). One
# package, one wheel: the agent's netlink library (pyroute2) is a dependency.
#
# Stage 1 builds the project's wheel and the wheels of its pinned dependencies,
# then installs them into a pip-less virtualenv. Stage 2 gets only that
# virtualenv: no compiler, no pip, no source tree, no build cache.
#   docker build -t aws-multi-eni-controller:dev .
#   docker run --rm aws-multi-eni-controller:dev version
#   docker run --rm aws-multi-eni-controller:dev agent --help
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY eni_controller/ eni_controller/
# The wheel ships both CRDs, NodeENI and ENINode (pyproject's force-include),
# for `eni-controller check`.
COPY helm/aws-multi-eni-controller/crds/ helm/aws-multi-eni-controller/crds/
RUN python -m venv /opt/build \
    && /opt/build/bin/pip wheel --wheel-dir /wheels . \
    && python -m venv --without-pip /opt/eni-controller \
    && /opt/build/bin/pip --python /opt/eni-controller/bin/python install \
        --no-index --find-links /wheels --compile /wheels/aws_multi_eni_controller-*.whl

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="aws-multi-eni-controller" \
      org.opencontainers.image.description="Attaches extra AWS ENIs to EKS nodes, declared by NodeENI resources" \
      org.opencontainers.image.licenses="Apache-2.0"
# A fixed numeric UID/GID so that the pod's runAsNonRoot can verify it.
RUN groupadd --system --gid 65532 eni-controller \
    && useradd --system --no-log-init --uid 65532 --gid 65532 \
        --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin eni-controller
COPY --from=build /opt/eni-controller /opt/eni-controller
# Bytecode is compiled at install time; nothing writes to the (read-only) root filesystem.
ENV PATH=/opt/eni-controller/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["eni-controller"]
CMD ["run"]
