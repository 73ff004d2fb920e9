"""Model size and cost figures used by the results table."""

from fer_lib.models.registry import build_model
from fer_lib.models.stats import count_macs, cpu_description, inference_images_per_second


def test_seed_cnn_multiply_adds_match_hand_count():
    # conv 48*48*9*75 + 24*24*9*75*125 + 12*12*9*125*256; dense 9216*260 + 260*128 + 128*64 + 64*32 + 32*7
    expected = 1_555_200 + 48_600_000 + 41_472_000 + 2_396_160 + 33_280 + 8_192 + 2_048 + 224
    assert count_macs(build_model("seed_cnn")) == expected


def test_throughput_and_cpu_description_are_measured():
    model = build_model("seed_cnn")
    assert inference_images_per_second(model, batch_size=8, batches=1, repeats=1) > 0
    assert "cores" in cpu_description()


def test_training_hardware_names_the_cpu_when_nothing_else_computes():
    from fer_lib.models.stats import training_hardware

    assert training_hardware() == cpu_description()  # TensorFlow here: the CPU trains
