from .catalogue import Annotator, Domain
from .corpus import Corpus, Sample
from .fleet import Worker, WorkerEvent
from .outcomes import MalformedAttempt, Outcome

__all__ = ["Annotator", "Corpus", "Domain", "MalformedAttempt", "Outcome", "Sample", "Worker", "WorkerEvent"]
