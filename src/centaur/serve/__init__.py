"""The inference service: a FastAPI app with a web page, dynamic batching, feedback and limits.

Start it with `centaur serve MODEL_DIR` or `uvicorn` on `create_app(ServeSettings(...))`.
"""
