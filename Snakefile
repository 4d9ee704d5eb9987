# HashEE reproduction suite: every table and figure regenerated from results files
# (the hash-based early exiting experiments and the learnability-of-difficulty study).
#   snakemake --cores 8                                          # the paper (GPU + network)
#   snakemake --cores 2 --configfile config/presets/demo.yaml    # offline demo
# The config is validated first; outputs are namespaced by preset (results/<preset>/, figures/<preset>/).

# A preset given with --configfile replaces the paper config whole (snakemake would otherwise
# merge the two, and the paper's backbones would leak into the demo).
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/hashes.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/sweeps.smk"
include: "workflow/rules/timing.smk"
include: "workflow/rules/summarization.smk"
include: "workflow/rules/difficulty.smk"
include: "workflow/rules/llm.smk"


rule all:
    input:
        analysis_targets(),
        difficulty_targets(),
        llm_targets(),
        pretrained_targets(),
    default_target: True
