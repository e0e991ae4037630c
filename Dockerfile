# The bridge as a service: `docker run -v $PWD/my.yaml:/config/experiment.yaml streamchaos`
# BASE: any image with Python 3.11+ as `python` (venv included); scripts/containers.sh
# builds this file on a Debian-Python base of its own, since no registry is reachable there.
ARG BASE=python:3.11-slim
FROM ${BASE}
WORKDIR /app
COPY pyproject.toml README.md ./
COPY streamchaos ./streamchaos
RUN python -m venv /opt/streamchaos \
 && /opt/streamchaos/bin/pip install --no-cache-dir --disable-pip-version-check -q . \
 && useradd --create-home --uid 10001 streamchaos
ENV PATH=/opt/streamchaos/bin:$PATH
USER 10001
EXPOSE 9464
ENTRYPOINT ["streamchaos"]
CMD ["run", "-c", "/config/experiment.yaml"]
