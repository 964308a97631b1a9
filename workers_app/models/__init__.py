from .catalogue import Annotator, Domain
from .corpus import Corpus, Sample
from .fleet import Worker, WorkerEvent
from .monitoring import Alert, AlertChannel, WorkerMetric
from .outcomes import MalformedAttempt, Outcome

__all__ = ["Alert", "AlertChannel", "Annotator", "Corpus", "Domain", "MalformedAttempt", "Outcome", "Sample", "Worker", "WorkerEvent",
           "WorkerMetric"]
