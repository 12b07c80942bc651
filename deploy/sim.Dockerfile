# Installs only what this service needs: protocols + its own package.
FROM python:3.11-slim
WORKDIR /app
COPY protocols /app/protocols
COPY firmware-sim /app/firmware-sim
RUN pip install --no-cache-dir ./protocols ./firmware-sim 
CMD ["eldercare-sim", "--help"]
