"""llama.cpp's own grammar engine, without a server: does a GBNF grammar parse, and which texts does it allow?

Loads only the vocabulary of the packaged Gemma 3 270M (about a second), tokenizes a text as the model would, and
feeds the tokens one by one through llama.cpp's grammar sampler: a token the grammar forbids gets a logit of -inf
(asking with ``apply`` first, because ``accept`` of a forbidden token aborts the process). At the end the grammar must
allow the end-of-generation token, so a text the grammar could only continue is not allowed.
"""

from __future__ import annotations

import ctypes
import math

import llama_cpp

from annotation_site.local_llm import model_path

MAX_TOKENS = 8192


class GrammarChecker:
    def __init__(self) -> None:
        params = llama_cpp.llama_model_default_params()
        params.vocab_only = True
        self.model = llama_cpp.llama_model_load_from_file(str(model_path()).encode(), params)
        assert self.model, "could not load the model's vocabulary"
        self.vocab = llama_cpp.llama_model_get_vocab(self.model)
        self.end = llama_cpp.llama_vocab_eos(self.vocab)

    def close(self) -> None:
        llama_cpp.llama_model_free(self.model)

    def parses(self, grammar: str) -> bool:
        sampler = llama_cpp.llama_sampler_init_grammar(self.vocab, grammar.encode(), b"root")
        if sampler:
            llama_cpp.llama_sampler_free(sampler)
        return bool(sampler)

    def _tokens(self, text: str) -> list[int]:
        data = text.encode()
        buffer = (llama_cpp.llama_token * MAX_TOKENS)()
        count = llama_cpp.llama_tokenize(self.vocab, data, len(data), buffer, MAX_TOKENS, False, True)
        assert count >= 0, "text too long to tokenize here"
        return list(buffer[:count])

    @staticmethod
    def _allowed(sampler, token: int) -> bool:
        candidates = (llama_cpp.llama_token_data * 1)(llama_cpp.llama_token_data(token, 0.0, 0.0))
        array = llama_cpp.llama_token_data_array(candidates, 1, -1, False)
        llama_cpp.llama_sampler_apply(sampler, ctypes.byref(array))
        return not math.isinf(candidates[0].logit)

    def allows(self, grammar: str, text: str) -> bool:
        sampler = llama_cpp.llama_sampler_init_grammar(self.vocab, grammar.encode(), b"root")
        assert sampler, "the grammar does not parse"
        try:
            for token in self._tokens(text):
                if not self._allowed(sampler, token):
                    return False
                llama_cpp.llama_sampler_accept(sampler, token)
            return self._allowed(sampler, self.end)
        finally:
            llama_cpp.llama_sampler_free(sampler)
