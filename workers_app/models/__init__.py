from .catalogue import Annotator, Domain
from .corpus import Corpus, Sample
from .outcomes import MalformedAttempt, Outcome

__all__ = ["Annotator", "Corpus", "Domain", "MalformedAttempt", "Outcome", "Sample"]
