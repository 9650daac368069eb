"""BERTScore on a tiny random BERT saved locally (real transformers classes, no hub)."""

import pytest


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    from transformers import BertConfig, BertModel, BertTokenizer

    folder = tmp_path_factory.mktemp("tiny-bert")
    words = "a the cat dog sat on mat red blue car sky is in ran park".split()
    (folder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    BertTokenizer(str(folder / "vocab.txt"), model_max_length=64).save_pretrained(folder)
    config = BertConfig(vocab_size=5 + len(words), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    import torch

    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    return str(folder)


def test_bertscore_identical_caption_scores_one(tiny_bert):
    from evaluation.bertscore import bert_scores

    preds = {"1": "a cat sat on the mat", "2": "a red car"}
    refs = {"1": ["a cat sat on the mat", "the dog ran"], "2": ["a blue sky"]}
    table, corpus = bert_scores(preds, refs, model=tiny_bert, num_layers=2, resamples=50)
    assert table.loc["1", "BERTScore-F1"] == pytest.approx(1.0, abs=1e-4)  # exact match with one reference
    assert table.loc["2", "BERTScore-F1"] < table.loc["1", "BERTScore-F1"]
    assert corpus["BERTScore-F1"].low <= corpus["BERTScore-F1"].value <= corpus["BERTScore-F1"].high


def test_bertscore_needs_references(tiny_bert):
    from evaluation.bertscore import bert_scores

    with pytest.raises(ValueError, match="no references"):
        bert_scores({"1": "a cat"}, {}, model=tiny_bert, num_layers=2)
