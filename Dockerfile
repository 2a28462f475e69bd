# Image of the mmstream service for docker-compose.yml (not built by the test suite).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY src ./src
RUN rm -f src/mmstream/schemas && cp -r schemas src/mmstream/schemas && pip install --no-cache-dir .
USER nobody
ENTRYPOINT []
CMD ["mmstream", "run"]
