"""The trained baseline annotator: learning a reference set, its model files, answering from them."""
