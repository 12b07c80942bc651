# Installs only what this service needs: protocols + its own package.
FROM python:3.11-slim
WORKDIR /app
COPY protocols /app/protocols
COPY cloud /app/cloud
RUN pip install --no-cache-dir ./protocols ./cloud 
CMD ["eldercare-cloud", "run"]
