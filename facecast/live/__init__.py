"""Live mode (`facecast serve`): a local web server where a portrait talks in real time to the
microphone or an audio file, plus an HTTP render API. One concern a module, each importing only
those after it:

- `serve`: the `facecast serve` command, uvicorn's configuration, `ServerThread` (tests, benchmarks)
- `app`: `create_app`, the page, the HTTP API's routes and the WebSocket endpoint over a `LiveServer`
- `session`: live sessions (`LiveSession`, one per WebSocket) and their clips (`LiveWorker`)
- `renders`: HTTP renders: the bounded queue, cancellation, errors and warnings for the client
- `portraits`: the portraits on offer, rigged once on one thread (`PortraitStore`)
- `uploads`: uploaded files read within limits, image headers checked before decoding
- `protocol`: the WebSocket protocol (described there): messages, frames, audio chunks
- `access`: the security model (described there): Host, same origin, token, limits (`Guard`)
- `client`: a Python client of the WebSocket (`run_client`), for tests and benchmarks
"""
