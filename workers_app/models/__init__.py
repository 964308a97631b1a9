from .baseline import TrainedBaseline
from .batches import Batch, BatchRequest
from .catalogue import Annotator, Domain
from .corpus import Corpus, Sample
from .fleet import Host, Installation, Worker, WorkerEvent
from .monitoring import Alert, AlertChannel, WorkerMetric
from .outcomes import MalformedAttempt, Outcome
from .pricing import AnnotatorPrice, CachedResponse
from .reference import ADJUDICATED_SET, ReferenceLabel, ReferenceSet
from .review import ReviewItem
from .runs import DEFAULT_RUN, Run, RunSample

__all__ = ["ADJUDICATED_SET", "DEFAULT_RUN", "Alert", "AlertChannel", "Annotator", "AnnotatorPrice", "Batch", "BatchRequest", "CachedResponse", "Corpus", "Domain", "Host", "Installation",
           "MalformedAttempt", "Outcome", "ReferenceLabel", "ReferenceSet", "ReviewItem", "Run", "RunSample", "Sample", "TrainedBaseline", "Worker", "WorkerEvent", "WorkerMetric"]
