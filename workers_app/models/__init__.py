from .catalogue import Annotator, Domain
from .corpus import Corpus, Sample

__all__ = ["Annotator", "Corpus", "Domain", "Sample"]
