"""The arithmetic of a linear text model, done directly: TF-IDF features, then one weight matrix.

Both families of the text classifier are linear in their TF-IDF features. MultinomialNB's joint log
likelihood is `X @ feature_log_prob_.T + class_log_prior_`; LogisticRegression's decision function is
`X @ coef_.T + intercept_` (for two labels, one column: its logits are `[0, d]`). So a fitted model is
`weights_` (n_features, n_labels) and `bias_` (n_labels,), and its probabilities are
softmax(logits / T), equal to scikit-learn's `predict_proba` at T = 1 (tests hold them to 1e-9).

The features are one TfidfVectorizer of words, or a FeatureUnion of it and a TfidfVectorizer of
characters (`char_wb`), whose columns follow the words'. `TextFeatures` computes each part's row as
scikit-learn does, without its per-call validation and sparse set-up: the analyzer's own tokens,
counts of known ones, binary / sublinear tf, idf, the row norm. Character n-grams of `char_wb` never
cross a space, so a text's are the sum of its words': each word's are counted once and kept
(`CHAR_CACHE_WORDS`), which makes the character features about as cheap as the words'.
"""
from collections import Counter
from itertools import chain
from math import exp, sqrt

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import MultinomialNB
from sklearn.pipeline import FeatureUnion

# Words whose character n-grams each process keeps counted. A Kaggle phrase's words are nearly all among
# the corpus' 17,000; the limit bounds what a stream of never-seen words can hold (about 30 MB).
CHAR_CACHE_WORDS = 100_000
# An explanation names at most this many of a text's unknown terms (and counts them all): echoing every
# one would make a batch of long texts answer several times its own size.
MAX_UNKNOWN = 20


class TextFeatures:
    """One fitted TfidfVectorizer's row of a text, as `transform` makes it, plus where its columns start.

    Parameters
    ----------
    vectorizer : TfidfVectorizer
        Fitted; checked by `kinds.text_loading.check_vectorizer`.
    offset : int
        The position of its first column among the model's features.
    """

    def __init__(self, vectorizer, offset=0):
        self.analyze_ = vectorizer.build_analyzer()
        self.vocabulary_ = vectorizer.vocabulary_
        self.offset_ = offset
        self.n_features_ = len(vectorizer.vocabulary_)
        self.binary_, self.sublinear_tf_, self.norm_ = vectorizer.binary, vectorizer.sublinear_tf, vectorizer.norm
        self.idf_ = np.asarray(vectorizer.idf_, dtype=np.float64) if vectorizer.use_idf else None
        # The idf by the model's column (zeros before `offset`): one `take` with a text's columns as they are.
        self.idf_by_column_ = (np.concatenate([np.zeros(offset), self.idf_]) if self.idf_ is not None else None)
        self.chars_ = vectorizer.analyzer == "char_wb"
        if self.chars_:
            self.preprocess_ = vectorizer.build_preprocessor()
            self.words_ = {}  # word -> (the columns of its known n-grams, one per n-gram, its number of n-grams)

    def counts(self, text):
        """({column: count} of the text's known terms, its number of terms); columns count from `offset`."""
        if self.chars_:
            return self.char_counts(text)
        analyzed = self.analyze_(text)
        # Counted in C (a Counter over a map) rather than term by term in Python; the columns come in the order
        # the terms are first seen, as before. Unknown terms count under None, dropped.
        counts = Counter(map(self.vocabulary_.get, analyzed))
        counts.pop(None, None)
        if self.offset_:
            counts = {index + self.offset_: count for index, count in counts.items()}
        return counts, len(analyzed)

    def char_counts(self, text):
        """`counts` for `char_wb`: the sum of each whitespace-separated word's n-grams (see the module)."""
        words = [self.word(word) for word in self.preprocess_(text).split()]
        # Each word's known n-grams are kept as their columns, one per occurrence: the text's counts are one
        # Counter over them all, counted in C, in the order first seen (as adding the words' counts did).
        return Counter(chain.from_iterable(grams for grams, _ in words)), sum(n for _, n in words)

    def word(self, word):
        """One preprocessed word's (the columns of its known character n-grams, one per occurrence, in order;
        its number of n-grams)."""
        found = self.words_.get(word)
        if found is None:
            # The analyzer on one word makes that word's n-grams: preprocessing it again changes nothing.
            grams = self.analyze_(word)
            vocabulary, offset = self.vocabulary_, self.offset_
            columns = tuple(index + offset for index in map(vocabulary.get, grams) if index is not None)
            if len(self.words_) >= CHAR_CACHE_WORDS:
                self.words_.clear()
            found = self.words_[word] = (columns, len(grams))
        return found

    def weights(self, indices, counts):
        """The tf-idf weights of a text's terms in its normalised row, as plain floats (what an explanation
        names): the same steps, in the same order, as TfidfTransformer.transform and normalize()."""
        return self.weighed(np.asarray(indices, dtype=np.intp), counts).tolist()

    def weighed(self, columns, counts):
        """The tf-idf weights of a text's terms (`columns`, an intp array, and their `counts`) in its normalised
        row, an array: the same steps, in the same order, as TfidfTransformer.transform and normalize().

        In numpy, a few whole-array calls: with character n-grams a short phrase has a hundred terms or more,
        and a Python float per term cost ~30 us against ~6 us; with a handful of words it costs about the same.
        """
        n = len(columns)
        weights = np.ones(n) if self.binary_ else np.fromiter(counts, np.float64, n)
        if self.sublinear_tf_:
            np.log(weights, out=weights)
            weights += 1.0
        if self.idf_by_column_ is not None:
            weights *= self.idf_by_column_.take(columns)
        if n and self.norm_ == "l2":
            weights /= sqrt(np.dot(weights, weights))
        elif n and self.norm_ == "l1":
            weights /= np.abs(weights).sum()
        return weights

    def logits_part(self, counts, model_weights):
        """This part's share of a text's logits, given its `counts`: its normalised row times the model's
        weights (n_features, n_labels), an array (n_labels,); None when the text has no known term here."""
        n = len(counts)
        if not n:
            return None
        columns = np.fromiter(counts, np.intp, n)
        # `take` with an array: a fancy index with a list of Python ints cost ~7 us for a hundred rows, this ~0.6.
        return self.weighed(columns, counts.values()) @ model_weights.take(columns, axis=0)

    def occurrences(self, text):
        """(the columns of a text's known terms, one per occurrence, in order; its number of terms)."""
        if self.chars_:
            found = [self.word(word) for word in self.preprocess_(text).split()]
            return chain.from_iterable(grams for grams, _ in found), sum(n for _, n in found)
        analyzed = self.analyze_(text)
        columns = [index for index in map(self.vocabulary_.get, analyzed) if index is not None]
        return ([index + self.offset_ for index in columns] if self.offset_ else columns), len(analyzed)

    def matrix(self, texts):
        """The texts' tf-idf rows of this part, a csr matrix, and each text's (terms, known terms).

        Each text's known terms are listed one per occurrence and counted for the whole batch at once, by
        scipy summing the duplicate entries of one sparse matrix, rather than in a dict per text.
        """
        columns, known, terms = [], [], []
        occurrences = self.occurrences
        for text in texts:
            occurring, count = occurrences(text)
            before = len(columns)
            columns.extend(occurring)
            known.append(len(columns) - before)
            terms.append(count)
        rows = np.repeat(np.arange(len(texts), dtype=np.int64), known)
        columns = np.fromiter(columns, np.int64, len(columns))
        if self.offset_:  # the part's own columns, subtracted once for the whole batch
            columns -= self.offset_
        matrix = sparse.csr_matrix((np.ones(len(columns)), (rows, columns)), shape=(len(texts), self.n_features_))
        matrix.sum_duplicates()  # the counts; sorted indices
        if self.binary_:
            matrix.data.fill(1.0)
        if self.sublinear_tf_:
            np.log(matrix.data, matrix.data)
            matrix.data += 1.0
        if self.idf_ is not None:
            matrix.data *= self.idf_[matrix.indices]
        if self.norm_ is not None:
            from sklearn.preprocessing import normalize  # noqa: PLC0415 (only batches need it)
            matrix = normalize(matrix, norm=self.norm_, copy=False)
        return matrix, np.asarray(terms, dtype=np.int64), np.asarray(known, dtype=np.int64)


def feature_parts(vectorizer):
    """The TfidfVectorizers of a fitted vectorizer, in column order: itself, or a FeatureUnion's parts."""
    if type(vectorizer) is FeatureUnion:
        return [part for _, part in vectorizer.transformer_list]
    return [vectorizer]


def linear_weights(classifier):
    """(weights, bias) of a fitted classifier: shapes (n_features, n_labels) and (n_labels,), such that
    `X @ weights + bias` is its joint log likelihood (NB) or its decision function as logits (LR)."""
    if type(classifier) is MultinomialNB:
        return classifier.feature_log_prob_.T, classifier.class_log_prior_
    if type(classifier) is LogisticRegression and classifier.coef_.shape[0] == 1:  # two labels: logits [0, d]
        coef = classifier.coef_[0]
        return np.column_stack([np.zeros_like(coef), coef]), np.array([0.0, float(classifier.intercept_[0])])
    return classifier.coef_.T, classifier.intercept_


class LinearTextScorer:
    """Class probabilities of a fitted text vectorizer + linear classifier, one text at a time or in batches.

    Parameters
    ----------
    vectorizer : TfidfVectorizer or FeatureUnion of TfidfVectorizers
        Fitted; the first part is the words'.
    classifier : MultinomialNB or LogisticRegression
        Fitted on the vectorizer's output.
    temperature : float
        Calibration: the probabilities are softmax(logits / temperature).
    """

    def __init__(self, vectorizer, classifier, *, temperature=1.0):
        self.temperature_ = float(temperature)
        self.parts_, offset = [], 0
        for part in feature_parts(vectorizer):
            self.parts_.append(TextFeatures(part, offset))
            offset += len(part.vocabulary_)
        self.words_ = self.parts_[0]
        weights, bias = linear_weights(classifier)
        # One row per feature, so a text's few features are gathered with one fancy index.
        self.weights_ = np.ascontiguousarray(weights, dtype=np.float64)
        self.bias_ = np.asarray(bias, dtype=np.float64)
        self.n_labels_ = len(self.bias_)

    def counts(self, text):
        """({column: count} over every part, the words' (tokens, known tokens)): the drift signals of a text
        are its words', whatever other features the model has."""
        counts, tokens = self.words_.counts(text)
        known = sum(counts.values())
        if len(self.parts_) > 1:
            counts = dict(counts)
            for part in self.parts_[1:]:
                counts.update(part.counts(text)[0])  # the parts' columns never overlap
        return counts, tokens, known

    def logits_one(self, text):
        """One text's (logits / T as plain floats, tokens, known tokens): each part counted, weighed and
        multiplied by its rows of `weights_` on its own, in numpy, so no part's columns are picked out of the
        others' (`row`) and no list of Python floats is made in between."""
        counts, tokens = self.words_.counts(text)
        known = sum(counts.values())
        scores = self.bias_
        for part in self.parts_:
            share = part.logits_part(counts if part is self.words_ else part.counts(text)[0], self.weights_)
            if share is not None:
                scores = scores + share
        if self.temperature_ != 1.0:
            scores = scores / self.temperature_
        return scores.tolist(), tokens, known

    def row(self, counts):
        """The (columns, weights) of a text's normalised row, each part normalised on its own."""
        if len(self.parts_) == 1:
            columns = list(counts)
            return columns, self.words_.weights(columns, counts.values())
        columns, weights = [], []
        for part in self.parts_:
            low, high = part.offset_, part.offset_ + part.n_features_
            mine = [i for i in counts if low <= i < high]
            columns += mine
            weights += part.weights(mine, [counts[i] for i in mine])
        return columns, weights

    def score_one(self, text):
        """One text's (probabilities, tokens, known tokens): the class probabilities as a list of floats,
        and how many word tokens it has and how many the words' vocabulary knows (the drift signals)."""
        scores, tokens, known = self.logits_one(text)
        return softmax_one(scores), tokens, known

    def best_one(self, text):
        """The index of one text's most probable class, without the softmax (a temperature does not move it)."""
        scores = self.logits_one(text)[0]
        return max(range(len(scores)), key=scores.__getitem__)

    def transform(self, texts):
        """The texts' feature matrix, as the vectorizer's `transform` makes it, with each text's tokens and
        known tokens: (csr matrix, tokens array, known array)."""
        matrices = [part.matrix(texts) for part in self.parts_]
        matrix = matrices[0][0] if len(matrices) == 1 else sparse.hstack([m for m, _, _ in matrices], format="csr")
        return matrix, matrices[0][1], matrices[0][2]

    def logits_of_matrix(self, matrix):
        """The logits / T of a feature matrix, shape (n_texts, n_labels)."""
        scores = matrix @ self.weights_ + self.bias_
        return scores / self.temperature_ if self.temperature_ != 1.0 else scores

    def explain_one(self, text):
        """One text's probabilities and why: (probabilities, explanation).

        The log-odds of the prediction p against the runner-up a is the bias' difference plus, for each
        feature, its weight in the text's row times (weights_[f, p] - weights_[f, a]), all over T. A word
        feature is named by its term; a character n-gram's part is summed into the word it comes from, or,
        for a word the model does not know as a word, into `unknown_contribution`: `prior`, the terms'
        contributions and `unknown_contribution` add up to `log_odds`.
        """
        counts, _, _ = self.counts(text)
        columns, weights = self.row(counts)
        scores = self.logits_one(text)[0]  # as `score_one` computes them, so both paths answer the same
        probabilities = softmax_one(scores)
        best, against = sorted(range(len(scores)), key=scores.__getitem__, reverse=True)[:2]
        gaps = ((self.weights_[columns, best] - self.weights_[columns, against]) / self.temperature_).tolist() \
            if columns else []
        contribution = dict(zip(columns, (w * g for w, g in zip(weights, gaps))))
        weight_of = dict(zip(columns, weights))
        terms, unknown = self.word_terms(text, contribution, weight_of)
        elsewhere = sum(self.add_char_terms(part, text, counts, contribution, terms) for part in self.parts_[1:])
        explained = sorted(terms.values(), key=lambda term: -abs(term["contribution"]))
        return probabilities, {
            "against_index": against, "log_odds": scores[best] - scores[against],
            "prior": float(self.bias_[best] - self.bias_[against]) / self.temperature_,
            "terms": explained, "unknown": list(unknown)[:MAX_UNKNOWN], "unknown_count": len(unknown),
            "unknown_contribution": elsewhere}

    def word_terms(self, text, contribution, weight_of):
        """The text's word features as explanation terms {term: {term, count, weight, contribution}}, and its
        unknown words (a dict used as an ordered set)."""
        terms, unknown = {}, {}
        vocabulary, offset = self.words_.vocabulary_, self.words_.offset_
        for token in self.words_.analyze_(text):
            index = vocabulary.get(token)
            if index is None:
                if " " not in token:  # an unknown word; an unknown pair of known words says nothing new
                    unknown[token] = None
            elif token in terms:
                terms[token]["count"] += 1
            else:
                terms[token] = {"term": token, "count": 1, "weight": weight_of[index + offset],
                                "contribution": contribution[index + offset]}
        return terms, unknown

    def add_char_terms(self, part, text, counts, contribution, terms):
        """Add a character part's contributions to `terms`, each n-gram's shared among the words it came from
        by their counts of it, so the sum stays exact. A word's share goes to the first of its own word terms
        the model knows (`boring.` to `boring`); the shares of words with none (unknown words, one-letter
        words) are summed apart: returned, as the explanation's `unknown_contribution`."""
        elsewhere = 0.0
        for word in part.preprocess_(text).split():
            word_counts = Counter(part.word(word)[0])
            share = sum(contribution.get(i, 0.0) * count / counts[i] for i, count in word_counts.items())
            term = next((terms[token] for token in self.words_.analyze_(word) if token in terms), None)
            if term is None:
                elsewhere += share
            else:
                term["contribution"] += share
        return elsewhere

    def predict_proba(self, texts):
        """The class probabilities of each text, one at a time: shape (n_texts, n_labels)."""
        return np.array([self.score_one(text)[0] for text in texts]).reshape(len(texts), self.n_labels_)


def softmax_one(scores):
    """Softmax of one list of log-scores as plain floats, equal to scikit-learn's exp(jll - logsumexp(jll))."""
    top = max(scores)
    shifted = [exp(x - top) for x in scores]
    total = sum(shifted)
    return [x / total for x in shifted]


def softmax(scores):
    """Row-wise softmax of a 2-d array of log-scores."""
    shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def is_words(vectorizer):
    """True for a TfidfVectorizer of words (the first part every text model has)."""
    return type(vectorizer) is TfidfVectorizer and vectorizer.analyzer == "word"
