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
                inputs=["raw_train", "raw_test", "raw_sample_submission", "raw_solution"],
                outputs=["validated_train", "validated_test"],
                name="validate_raw_data",
            ),
            node(plot_sample_digits, "validated_train", "sample_digits", name="plot_sample_digits"),
            node(stratified_split, ["validated_train", "params:split"], "split", name="stratified_split"),
            node(
                normalise_images,
                inputs=["validated_train", "split", "params:normalisation"],
                outputs=["normalised_train", "normalised_validation", "normalisation_stats"],
                name="normalise_images",
            ),
            node(
                build_tensor_datasets,
                inputs=["normalised_train", "normalised_validation", "validated_train", "split"],
                outputs=["train_set", "validation_set"],
                name="build_tensor_datasets",
            ),
        ],
        tags="data_processing",
    )
