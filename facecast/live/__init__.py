"""Live mode (`facecast serve`): a local web server where a portrait talks in real time to the
microphone or an audio file, plus an HTTP render API. See `server` for the protocol.
"""
