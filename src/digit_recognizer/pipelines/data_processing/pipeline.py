"""Raw Kaggle CSVs → validated uint8 tables → stratified split → normalised float32 tensors."""

from kedro.pipeline import Pipeline, node

from .nodes import (
    build_tensor_datasets,
    normalise_images,
    plot_sample_digits,
    stratified_split,
    validate_raw_data,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                validate_raw_data,
                inputs=["raw_train", "raw_test", "raw_sample_submission"],
                outputs=["validated_train", "validated_test"],
                name="validate_raw_data",
            ),
            node(plot_sample_digits, "validated_train", "sample_digits", name="plot_sample_digits"),
            node(
                stratified_split,
                inputs=["validated_train", "params:split.validation_fraction", "params:split.seed"],
                outputs="split",
                name="stratified_split",
            ),
            node(
                normalise_images,
                inputs=["validated_train", "validated_test", "split", "params:normalisation.standardise"],
                outputs=["normalised_train", "normalised_validation", "normalised_test", "normalisation_stats"],
                name="normalise_images",
            ),
            node(
                build_tensor_datasets,
                inputs=["normalised_train", "normalised_validation", "normalised_test", "validated_train", "split"],
                outputs=["train_set", "validation_set", "test_set"],
                name="build_tensor_datasets",
            ),
        ],
        tags="data_processing",
    )
