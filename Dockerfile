# wxsync for docker-compose users. CI and these machines run it straight from a checkout instead.
FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY bin ./bin
COPY cli ./cli
COPY lib ./lib
COPY consumers ./consumers
COPY producers ./producers
COPY api ./api
COPY sim ./sim
COPY sql ./sql
ENV WXSYNC_DATA_DIR=/data
EXPOSE 8080
ENTRYPOINT ["node", "bin/wxsync.js"]
CMD ["run"]
