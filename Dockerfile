# The mktx-grpc image: the service, its SQL and the console script.
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
COPY pyproject.toml README.md ./
COPY src ./src
COPY gen ./gen
COPY sql ./sql
RUN pip install -e .
EXPOSE 50051 5000 5081 9464
CMD ["mktx-grpc", "serve"]
