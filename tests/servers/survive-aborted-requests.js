// Loaded with `node --require` before dynalite's cli.js by tests/conftest.py.
//
// dynalite rethrows a request's 'error' event (index.js:
// `req.on('error', function (err) { throw err })`), so a client killed while
// sending a request -- the kill -9 tests do exactly that -- takes the whole
// server down with "Error: aborted" (ECONNRESET). A real DynamoDB endpoint just
// drops that request; so does this: only that error is ignored, anything else
// still ends the process.
process.on('uncaughtException', (err) => {
  if (err && err.code === 'ECONNRESET') {
    console.error(`ignored an aborted request: ${err.message}`)
    return
  }
  console.error(err)
  process.exit(1)
})
