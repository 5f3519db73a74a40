"""The one registry of zoo models: where each file officially comes from and how to use it.

Every fact here was looked up in the model's own publication (BVLC model cards, the
authors' gists and repositories, the Places and VGG project pages). A `sha1` is one the
authors published; a `sha256` was taken from the official file at the URL given (the
BVLC, CSAIL and SqueezeNet repositories), where the authors publish none. A file with
neither cannot be verified, and the converter says so.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from converters.preprocessing import Preprocessing

KINDS = ("prototxt", "weights", "mean", "classes")


@dataclass(frozen=True)
class Source:
    """One file a model needs: its official name and URL, and how to check it."""

    kind: str  # one of KINDS
    name: str  # official file name; also its name in the download cache and in a mirror
    url: str  # where it is downloaded from (the archive's URL when `archive` is set)
    sha1: str | None = None  # published by the model's authors
    sha256: str | None = None  # of the official file, where no sha1 is published
    archive: str | None = None  # the .tar.gz (file name) that holds `name` as a member
    folder: str | None = None  # mirror folder, when the file is shared with other models
    checksum_doubt: str = ""  # why the published checksum may itself be wrong
    # Other paths (from a mirror's root) where mirrors keep this file's content, perhaps
    # in another form: a class list as users find it (see models/labels.py).
    mirror_names: tuple[str, ...] = ()

    @property
    def checksum(self) -> tuple[str, str] | None:
        """(algorithm, hex digest) of the official file, if known."""
        if self.sha1:
            return "sha1", self.sha1
        if self.sha256:
            return "sha256", self.sha256
        return None


@dataclass(frozen=True)
class ZooModel:
    """A named net of the zoo."""

    name: str
    aliases: tuple[str, ...]
    description: str
    folder: str  # its folder in the download cache and in a mirror like shared/models
    licence: str
    input_size: tuple[int, int]  # height, width
    sources: tuple[Source, ...]
    default_layer: str
    channel_order: str = "BGR"
    scale: float = 255.0
    mean: tuple[float, float, float] | None = None  # used when no mean file is listed
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    classes: tuple[Source, ...] = ()  # the class list (kind "classes"), where one is known
    homepage: str = ""
    notes: str = ""
    _names: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_names", tuple(normalise(n) for n in (self.name, *self.aliases)))

    def source(self, kind: str) -> Source | None:
        return next((s for s in self.sources if s.kind == kind), None)

    def preprocessing(self, mean: list[float] | None = None) -> Preprocessing:
        """The preprocessing of the network description (`mean`: from the mean file)."""
        values = mean if mean is not None else self.mean
        if values is None:
            raise ValueError(f"{self.name}: no mean values and no mean file")
        return Preprocessing(self.channel_order, self.scale,
                             tuple(round(float(v), 4) for v in values), self.std)


def normalise(name: str) -> str:
    return name.strip().lower().replace("-", "_")


BVLC = "https://raw.githubusercontent.com/BVLC/caffe/master/"
BVLC_WEIGHTS = "http://dl.caffe.berkeleyvision.org/"
PLACES365 = "https://raw.githubusercontent.com/CSAILVision/places365/master/"
PLACES365_WEIGHTS = "http://places2.csail.mit.edu/models_places365/"
VGG_WEIGHTS = "http://www.robots.ox.ac.uk/~vgg/software/deep_eval/releases/bvlc/"
SQUEEZENET = "https://raw.githubusercontent.com/forresti/SqueezeNet/master/SqueezeNet_v1.1/"

# Class lists: a converted model keeps its own as labels.txt. No checksum is published
# for synset_words.txt, batches.meta.txt or categoryIndex_places205.csv, so those cannot
# be verified.
IMAGENET_CLASSES = (Source(
    "classes", "synset_words.txt", BVLC_WEIGHTS + "caffe_ilsvrc12.tar.gz",
    archive="caffe_ilsvrc12.tar.gz", folder="_common",
    mirror_names=("bvlc_googlenet/categories.txt",)),)
PLACES365_CLASSES = (Source(
    "classes", "categories_places365.txt", PLACES365 + "categories_places365.txt",
    sha256="2affba635eb657e7ca95f4e6cc69bd9fac29ef4c32aeb83cafdfcd06ec6a1ea6",
    folder="googlenet_places365"),)
CIFAR10_CLASSES = (Source(
    "classes", "batches.meta.txt", "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
    archive="cifar-10-binary.tar.gz"),)
IMAGENET_MEAN = Source(
    "mean", "ilsvrc_2012_mean.npy", BVLC + "python/caffe/imagenet/ilsvrc_2012_mean.npy",
    sha256="97eefba7e046ee097121ad18564329636d2f9c153b748c7313653cae8594a149", folder="_common")
PLACES365_MEAN = Source(
    "mean", "places365CNN_mean.binaryproto", PLACES365 + "places365CNN_mean.binaryproto",
    sha256="b14536a69d62eb63c11f175205060b1cbb601b64bc5c6730222554b2e28f6fd7",
    folder="alexnet_places365")
VGG_MEAN = Source("mean", "VGG_mean.binaryproto", VGG_WEIGHTS + "VGG_mean.binaryproto",
                  folder="vgg_cnn_s")
# BVLC GoogLeNet's train_val.prototxt subtracts these (B, G, R) values.
BVLC_MEAN_VALUES = (104.0, 117.0, 123.0)

NIN_SHA1 = "8e89c8fcd46e02780e16c867a5308e7bb7af0803"  # published in both NIN gists
PLACES205_GOOGLENET_TAR = "http://places.csail.mit.edu/model/googlenet_places205.tar.gz"
PLACES205_ALEXNET_TAR = "http://places.csail.mit.edu/model/placesCNN.tar.gz"


def _vgg(letter: str, gist: str, description: str) -> ZooModel:
    return ZooModel(
        name=f"vgg_{letter.lower()}", aliases=(f"vgg_cnn_{letter.lower()}",),
        description=description, folder=f"vgg_cnn_{letter.lower()}",
        licence="non-commercial use only (gist readme)", input_size=(224, 224),
        sources=(
            Source("prototxt", f"VGG_CNN_{letter}_deploy.prototxt",
                   f"https://gist.githubusercontent.com/ksimonyan/{gist}/raw/"
                   f"VGG_CNN_{letter}_deploy.prototxt"),
            Source("weights", f"VGG_CNN_{letter}.caffemodel",
                   f"{VGG_WEIGHTS}VGG_CNN_{letter}.caffemodel"),
            VGG_MEAN,
        ),
        default_layer="conv5", classes=IMAGENET_CLASSES,
        homepage=f"https://gist.github.com/ksimonyan/{gist}",
        notes="Chatfield et al., BMVC 2014; BGR weights and synsets.txt class order (readme).")


REGISTRY: tuple[ZooModel, ...] = (
    ZooModel(
        name="nin", aliases=("nin_imagenet", "network_in_network"),
        description="Network in Network, ImageNet (Lin et al. 2014): 4 NIN blocks, 29 MB",
        folder="nin_imagenet", licence="non-commercial (ImageNet terms; gist readme)",
        input_size=(224, 224),
        sources=(
            Source("prototxt", "train_val.prototxt",
                   "https://gist.githubusercontent.com/mavenlin/d802a5849de39225bcc6/raw/"
                   "train_val.prototxt"),
            Source("weights", "nin_imagenet.caffemodel",
                   "https://www.dropbox.com/s/0cidxafrb2wuwxw/nin_imagenet.caffemodel?dl=1",
                   sha1=NIN_SHA1,
                   checksum_doubt="the NIN CIFAR-10 gist publishes the very same sha1, so one "
                                  "of the two is a copy error"),
            IMAGENET_MEAN,
        ),
        default_layer="conv4-1024", classes=IMAGENET_CLASSES,
        homepage="https://gist.github.com/mavenlin/d802a5849de39225bcc6",
        notes="The gist publishes only train_val.prototxt (its data and loss layers are "
              "dropped). Trained with the authors' own ImageNet mean image, which is not "
              "published; BVLC's ILSVRC-2012 mean stands in for it."),
    ZooModel(
        name="nin_cifar10", aliases=("cifar10_nin",),
        description="Network in Network, CIFAR-10 (Lin et al. 2014): 3 NIN blocks, 32x32 input",
        folder="nin_cifar10", licence="BSD (gist readme); CIFAR-10 data terms",
        input_size=(32, 32),
        sources=(
            Source("prototxt", "train_val.prototxt",
                   "https://gist.githubusercontent.com/mavenlin/e56253735ef32c3c296d/raw/"
                   "train_val.prototxt"),
            Source("weights", "cifar10_nin.caffemodel",
                   "https://www.dropbox.com/s/blrajqirr1p31v0/cifar10_nin.caffemodel?dl=1",
                   sha1=NIN_SHA1,
                   checksum_doubt="the NIN ImageNet gist publishes the very same sha1, so one "
                                  "of the two is a copy error"),
        ),
        default_layer="cccp4", channel_order="RGB",
        mean=(125.3, 123.0, 113.9), std=(63.0, 62.1, 66.7),
        classes=CIFAR10_CLASSES,
        homepage="https://gist.github.com/mavenlin/e56253735ef32c3c296d",
        notes="Trained on the authors' GCN+ZCA-whitened CIFAR-10; the CIFAR-10 per-channel "
              "mean and std approximate that whitening."),
    ZooModel(
        name="alexnet", aliases=("bvlc_alexnet",),
        description="BVLC AlexNet (Krizhevsky et al. 2012 replication), ImageNet",
        folder="bvlc_alexnet", licence="unrestricted (BVLC model card)", input_size=(227, 227),
        sources=(
            Source("prototxt", "deploy.prototxt", BVLC + "models/bvlc_alexnet/deploy.prototxt",
                   sha256="b564ba76416b4ac1e062c6621cbd80d9c19304ba152d9d791c75870f3182c4fa"),
            Source("weights", "bvlc_alexnet.caffemodel", BVLC_WEIGHTS + "bvlc_alexnet.caffemodel",
                   sha1="9116a64c0fbe4459d18f4bb6b56d647b63920377"),
            IMAGENET_MEAN,
        ),
        default_layer="conv5", classes=IMAGENET_CLASSES,
        homepage="https://github.com/BVLC/caffe/tree/master/models/bvlc_alexnet"),
    ZooModel(
        name="caffenet", aliases=("bvlc_reference_caffenet", "reference_caffenet"),
        description="BVLC CaffeNet: AlexNet with pooling before normalisation, ImageNet",
        folder="bvlc_reference_caffenet", licence="unrestricted (BVLC model card)",
        input_size=(227, 227),
        sources=(
            Source("prototxt", "deploy.prototxt",
                   BVLC + "models/bvlc_reference_caffenet/deploy.prototxt",
                   sha256="922248a4d2f6aac1cc8e7e5dbd996cc2ecd3356480d67c198f6cf96b12311a04"),
            Source("weights", "bvlc_reference_caffenet.caffemodel",
                   BVLC_WEIGHTS + "bvlc_reference_caffenet.caffemodel",
                   sha1="4c8d77deb20ea792f84eb5e6d0a11ca0a8660a46"),
            IMAGENET_MEAN,
        ),
        default_layer="conv5", classes=IMAGENET_CLASSES,
        homepage="https://github.com/BVLC/caffe/tree/master/models/bvlc_reference_caffenet"),
    ZooModel(
        name="googlenet", aliases=("bvlc_googlenet",),
        description="BVLC GoogLeNet (Szegedy et al. 2014 replication), ImageNet; DeepDream's net",
        folder="bvlc_googlenet", licence="unrestricted (BVLC model card)",
        input_size=(224, 224),
        sources=(
            Source("prototxt", "deploy.prototxt", BVLC + "models/bvlc_googlenet/deploy.prototxt",
                   sha256="fa36cd4112a3240a29600a5aa35333f31bec33daa1a6085b0af308a9f50f0c50"),
            Source("weights", "bvlc_googlenet.caffemodel",
                   BVLC_WEIGHTS + "bvlc_googlenet.caffemodel",
                   sha1="405fc5acd08a3bb12de8ee5e23a96bec22f08204"),
        ),
        default_layer="inception_4c/output", mean=BVLC_MEAN_VALUES, classes=IMAGENET_CLASSES,
        homepage="https://github.com/BVLC/caffe/tree/master/models/bvlc_googlenet",
        notes="Mean (104, 117, 123) as in BVLC's train_val.prototxt; Google's DeepDream "
              "notebook uses (104, 116, 122)."),
    ZooModel(
        name="places205_googlenet", aliases=("googlenet_places205",),
        description="GoogLeNet trained on Places205 scenes (Zhou et al. 2014)",
        folder="googlenet_places205",
        licence="not stated in the archive; see http://places.csail.mit.edu/downloadCNN.html",
        input_size=(224, 224),
        sources=(
            Source("prototxt", "deploy_places205.protxt", PLACES205_GOOGLENET_TAR,
                   archive="googlenet_places205.tar.gz"),
            Source("weights", "googlelet_places205_train_iter_2400000.caffemodel",
                   PLACES205_GOOGLENET_TAR, archive="googlenet_places205.tar.gz"),
        ),
        default_layer="inception_4c/output", mean=(104.930, 113.255, 116.210),
        classes=(Source("classes", "categoryIndex_places205.csv", PLACES205_GOOGLENET_TAR,
                        archive="googlenet_places205.tar.gz",
                        mirror_names=("googlenet_places205/categories.txt",)),),
        homepage="http://places.csail.mit.edu/downloadCNN.html",
        notes="Its train_val subtracts the Places205 mean image, published in placesCNN.tar.gz "
              "as places205CNN_mean.binaryproto; these are that file's per-channel means."),
    ZooModel(
        name="places365_googlenet", aliases=("googlenet_places365",),
        description="GoogLeNet trained on Places365-Standard scenes (Zhou et al. 2017)",
        folder="googlenet_places365", licence="CC BY (CSAILVision/places365 README)",
        input_size=(224, 224),
        sources=(
            Source("prototxt", "deploy_googlenet_places365.prototxt",
                   PLACES365 + "deploy_googlenet_places365.prototxt",
                   sha256="4d116282e2e8a6ef32e32a7453505c041d58c30368eaaff3663fab5d6e5e5b4e"),
            Source("weights", "googlenet_places365.caffemodel",
                   PLACES365_WEIGHTS + "googlenet_places365.caffemodel"),
            PLACES365_MEAN,
        ),
        default_layer="inception_4c/output", classes=PLACES365_CLASSES,
        homepage="https://github.com/CSAILVision/places365"),
    ZooModel(
        name="places205_alexnet", aliases=("alexnet_places205", "placescnn", "places205cnn"),
        description="AlexNet (CaffeNet layout) trained on Places205 scenes (Zhou et al. 2014)",
        folder="places205_alexnet",
        licence="not stated in the archive; see http://places.csail.mit.edu/downloadCNN.html",
        input_size=(227, 227),
        sources=(
            Source("prototxt", "places205CNN_deploy.prototxt", PLACES205_ALEXNET_TAR,
                   archive="placesCNN.tar.gz"),
            Source("weights", "places205CNN_iter_300000.caffemodel", PLACES205_ALEXNET_TAR,
                   archive="placesCNN.tar.gz"),
            Source("mean", "places205CNN_mean.binaryproto", PLACES205_ALEXNET_TAR,
                   archive="placesCNN.tar.gz"),
        ),
        default_layer="conv5",
        classes=(Source("classes", "categoryIndex_places205.csv", PLACES205_ALEXNET_TAR,
                        archive="placesCNN.tar.gz"),),
        homepage="http://places.csail.mit.edu/downloadCNN.html"),
    ZooModel(
        name="places365_alexnet", aliases=("alexnet_places365",),
        description="AlexNet trained on Places365-Standard scenes (Zhou et al. 2017)",
        folder="alexnet_places365", licence="CC BY (CSAILVision/places365 README)",
        input_size=(227, 227),
        sources=(
            Source("prototxt", "deploy_alexnet_places365.prototxt",
                   PLACES365 + "deploy_alexnet_places365.prototxt",
                   sha256="55e81deff3ec786e91e81e23001c18685ee919d392873670e501b484b88d0d04"),
            Source("weights", "alexnet_places365.caffemodel",
                   PLACES365_WEIGHTS + "alexnet_places365.caffemodel"),
            PLACES365_MEAN,
        ),
        default_layer="conv5", classes=PLACES365_CLASSES,
        homepage="https://github.com/CSAILVision/places365"),
    _vgg("S", "fd8800eeb36e276cd6f9", "VGG CNN_S (\"slow\"), ImageNet, BMVC 2014"),
    _vgg("F", "a32c9063ec8e1118221a", "VGG CNN_F (\"fast\"), ImageNet, BMVC 2014"),
    _vgg("M", "f194575702fae63b2829", "VGG CNN_M (\"medium\"), ImageNet, BMVC 2014"),
    ZooModel(
        name="squeezenet", aliases=("squeezenet_v1.1", "squeezenet1_1"),
        description="SqueezeNet v1.1 (Iandola et al. 2016): AlexNet accuracy in 4.8 MB",
        folder="squeezenet_v1.1", licence="BSD-2-Clause (forresti/SqueezeNet LICENSE)",
        input_size=(227, 227),
        sources=(
            Source("prototxt", "deploy.prototxt", SQUEEZENET + "deploy.prototxt",
                   sha256="d041bfb2ab4b32fda4ff6c6966684132f2924e329916aa5bfe9285c6b23e3d1c"),
            Source("weights", "squeezenet_v1.1.caffemodel",
                   SQUEEZENET + "squeezenet_v1.1.caffemodel"),
        ),
        default_layer="fire7/concat", mean=BVLC_MEAN_VALUES, classes=IMAGENET_CLASSES,
        homepage="https://github.com/forresti/SqueezeNet",
        notes="Mean (104, 117, 123) as in SqueezeNet_v1.1/train_val.prototxt."),
    ZooModel(
        name="googlenet_cars", aliases=("googlenetcars", "cars"),
        description="GoogLeNet fine-tuned on 431 car models of CompCars (Yang et al. 2015)",
        folder="googlenet_cars", licence="non-commercial (gist readme)", input_size=(224, 224),
        sources=(
            Source("prototxt", "deploy.prototxt",
                   "https://gist.githubusercontent.com/bogger/b90eb88e31cd745525ae/raw/"
                   "b5dd8c1a58318fdceeeac00322c90e4a865c3229/deploy.prototxt"),
            Source("weights", "googlenet_finetune_web_car_iter_10000.caffemodel",
                   "http://mmlab.ie.cuhk.edu.hk/datasets/comp_cars/"
                   "googlenet_finetune_web_car_iter_10000.caffemodel"),
        ),
        default_layer="inception_4c_output", mean=BVLC_MEAN_VALUES,
        # The gist's README links this file for "the correspondence between the output
        # nodes of the network and the 431 car models"; no checksum is published.
        classes=(Source("classes", "make_model_names_cls.mat",
                        "https://raw.githubusercontent.com/bogger/caffe-multigpu/multigpu/"
                        "models/finetune_web_car/matlab/make_model_names_cls.mat"),),
        homepage="https://gist.github.com/bogger/b90eb88e31cd745525ae",
        notes="The gist states no mean; that of the BVLC GoogLeNet it was fine-tuned from is "
              "used."),
    ZooModel(
        name="oxford102", aliases=("oxfordflowers102", "oxford_flowers102", "flowers102"),
        description="CaffeNet fine-tuned on the Oxford 102 flowers (J. Goode, 2015)",
        folder="oxford102", licence="non-commercial (gist readme)", input_size=(227, 227),
        sources=(
            Source("prototxt", "deploy.prototxt",
                   "https://raw.githubusercontent.com/jimgoo/caffe-oxford102/master/"
                   "deploy.prototxt"),
            Source("weights", "oxford102.caffemodel",
                   "https://s3.amazonaws.com/jgoode/oxford102.caffemodel"),
            IMAGENET_MEAN,
        ),
        # "in order from class 1 to class 102 as used in the mat files" (the README), read
        # as output 0 = class 1; no checksum is published.
        classes=(Source("classes", "class-labels.py",
                        "https://raw.githubusercontent.com/jimgoo/caffe-oxford102/master/"
                        "class-labels.py"),),
        default_layer="conv5", homepage="https://gist.github.com/jimgoo/0179e52305ca768a601f",
        notes="Trained with the ILSVRC-2012 mean image (README)."),
)


def lookup(name: str) -> ZooModel | None:
    """The zoo model with this name or alias (case and '-'/'_' do not matter)."""
    wanted = normalise(name)
    return next((m for m in REGISTRY if wanted in m._names), None)


def did_you_mean(name: str) -> str:
    """'did you mean X?' for the zoo name or alias closest to a misspelt `name`, else ''."""
    names = {alias: m.name for m in REGISTRY for alias in m._names}
    close = difflib.get_close_matches(normalise(name), list(names), n=1, cutoff=0.75)
    return f"did you mean {names[close[0]]}?" if close else ""


def is_zoo_name(name: str) -> bool:
    return lookup(name) is not None


def registry_table(converted: set[str] = frozenset()) -> str:
    """A printable list of the zoo: name, input size, description, aliases, licence."""
    width = max(len(m.name) for m in REGISTRY)
    lines = []
    for m in REGISTRY:
        size = f"{m.input_size[0]}x{m.input_size[1]}"
        mark = "  [converted]" if m.name in converted else ""
        lines.append(f"  {m.name:<{width}}  {size:>7}  {m.description}{mark}")
        details = f"aliases: {', '.join(m.aliases)}; " if m.aliases else ""
        lines.append(f"  {'':<{width}}           {details}licence: {m.licence}")
    return "\n".join(lines)
