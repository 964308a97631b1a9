from .catalogue import Annotator, Domain
from .corpus import Corpus, Sample
from .fleet import Host, Worker, WorkerEvent
from .monitoring import Alert, AlertChannel, WorkerMetric
from .outcomes import MalformedAttempt, Outcome
from .review import ReviewItem

__all__ = ["Alert", "AlertChannel", "Annotator", "Corpus", "Domain", "Host", "MalformedAttempt", "Outcome",
           "ReviewItem", "Sample", "Worker", "WorkerEvent", "WorkerMetric"]
