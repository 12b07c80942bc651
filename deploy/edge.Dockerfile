# Installs only what this service needs: protocols + its own package.
FROM python:3.11-slim
WORKDIR /app
COPY protocols /app/protocols
COPY edge /app/edge
RUN pip install --no-cache-dir ./protocols ./edge 
CMD ["eldercare-edge", "run", "--config", "/config/gateway.yaml"]
