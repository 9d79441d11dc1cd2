"""Packaging for uegan_tf (UE-AnimeGANv2 in TensorFlow 2 / Keras 3)."""

from pathlib import Path

from setuptools import find_packages
from setuptools import setup

HERE = Path(__file__).parent

setup(
    name="uegan_tf",
    version="0.1.0",
    description=(
        "UE-AnimeGANv2 (AnimeGANv2 + U-Net skips + edge loss) for "
        "TensorFlow 2 / Keras 3: train, stylize, export, serve."
    ),
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    packages=find_packages(include=["uegan_tf", "uegan_tf.*"]),
    # Bundled example photos, the default style's weights and model cards.
    include_package_data=True,
    package_data={
        "uegan_tf": [
            "examples/*.jpg",
            "examples/*.png",
            "examples/*.md",
            "styles/*/*",
        ],
    },
    install_requires=[
        # Keras 3 comes with TensorFlow >= 2.16. tensorflow-addons is not
        # used: it is end-of-life and does not import under Keras 3.
        "tensorflow>=2.16",
        "numpy",
        "absl-py",
        # Headless OpenCV: the GUI build needs libGL, which servers lack.
        "opencv-python-headless",
        "pillow",
        "tqdm",
        # tf.summary writes need it; TF 2.21 no longer pulls it in.
        "tensorboard",
        # A static ffmpeg binary from PyPI, for video input and audio copy.
        "imageio-ffmpeg",
    ],
    extras_require={
        "export": [
            "tf2onnx",
            "onnxruntime",
            "ai-edge-litert",
            "tensorflow-serving-api",
        ],
        "data": ["tensorflow-datasets"],
        "app": ["gradio>=6,<7"],
        # Bulk stylization (python -m uegan_tf.inference.beam). Beam 2.77
        # pins protobuf < 7 and pyarrow < 26: pip then installs protobuf
        # 6.33 and pyarrow 25, which TensorFlow 2.21, tf2onnx,
        # tensorflow-serving-api and gradio accept (pip check is clean).
        "beam": ["apache-beam>=2.60"],
        "dev": [
            "apache-beam>=2.60",
            "pytest",
            # The suite runs on 2 processes, one test module each (the
            # module-scoped models and trained work dirs are built once).
            "pytest-xdist",
            "scikit-image",
            "ai-edge-litert",
            "tf2onnx",
            "onnxruntime",
            "tensorflow-serving-api",
            "tensorflow-datasets",
            "gradio>=6,<7",
            "playwright",
        ],
    },
    entry_points={
        "console_scripts": ["uegan=uegan_tf.cli:main"],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
