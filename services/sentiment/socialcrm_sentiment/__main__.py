"""Run the sentiment service: ``socialcrm-sentiment --help`` lists its settings."""

import os

# One BLAS thread, set before numpy loads: the heads' products are small (a batch times a
# few hundred features), and OpenBLAS's extra threads spin after each one, which cost a
# third of the default path's CPU time; the service scales by processes, not threads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from socialcrm.runtime import run_service
from socialcrm_sentiment.app import build_app
from socialcrm_sentiment.settings import SentimentSettings


def main() -> None:
    run_service(
        SentimentSettings,
        build_app,
        "Sentiment: adds language, sentiment, intent, urgency and reach to every interaction.",
    )


if __name__ == "__main__":
    main()
