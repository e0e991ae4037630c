# The bridge as a service: `docker run -v $PWD/my.yaml:/config/experiment.yaml streamchaos`
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY streamchaos ./streamchaos
RUN pip install --no-cache-dir . && useradd --create-home --uid 10001 streamchaos
USER 10001
EXPOSE 9464
ENTRYPOINT ["streamchaos"]
CMD ["run", "-c", "/config/experiment.yaml"]
