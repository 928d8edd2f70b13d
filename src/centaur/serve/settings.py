"""Service settings: from flags, CENTAUR_SERVE_* environment variables or a .env file."""
from pathlib import Path
from typing import Literal, Optional

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServeSettings(BaseSettings):
    """Everything `centaur serve` can be told. Precedence: flags, environment, file, defaults.

    >>> ServeSettings(model_dir="models/emoji", max_batch_size=8).port
    8000
    """

    model_config = SettingsConfigDict(env_prefix="CENTAUR_SERVE_", extra="forbid")

    model_dir: Path
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    runtime: Literal["torch", "onnx"] = "torch"
    threads: Optional[int] = Field(None, ge=1, description="torch threads for the model (default: all cores)")
    lone_threads: int = Field(1, ge=0, description="threads for a batch of one image (0: as many as `threads`)")
    max_batch_size: int = Field(16, ge=1, description="most requests run through the model together")
    # 0: never hold a request back; requests that arrive while the model runs form the next
    # batch by themselves, so batching happens exactly when it pays (under load)
    max_wait_ms: float = Field(0.0, ge=0, description="how long the first request of a batch waits for others")
    max_body_bytes: int = Field(10_000_000, ge=1, description="larger requests get 413")
    # 20 megapixels: any phone photo; a decompression bomb is refused from its header
    max_pixels: int = Field(20_000_000, ge=1, description="larger images get 422, before decoding")
    max_in_flight: int = Field(64, ge=1, description="more concurrent requests get 503 with Retry-After")
    timeout_s: float = Field(30.0, gt=0, description="a prediction that takes longer gets 504")
    max_batch_items: int = Field(256, ge=1, description="most images or rows in one /predict/batch request")
    token: Optional[str] = Field(None, description="if set, POST requests need 'Authorization: Bearer TOKEN'")
    feedback_db: Optional[Path] = Field(None, description="SQLite file for contested predictions "
                                                          "(default: MODEL_DIR/feedback.sqlite)")
    recent_bytes: int = Field(32_000_000, ge=0, description="memory for recent inputs, so a contest need not "
                                                           "send its input again")
    recent_predictions: int = Field(100_000, ge=1, description="how many recent predictions can be contested")

    @property
    def feedback_path(self):
        return self.feedback_db or Path(self.model_dir) / "feedback.sqlite"
