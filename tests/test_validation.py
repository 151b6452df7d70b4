"""Config checks (trajcross_jax/validation.py): a bad value is one line naming the field."""

import pytest

from configs import nogan
from configs import test as test_config
from configs.baselines import acmr, moco
from trajcross_jax import validation


@pytest.mark.parametrize(
  'field, value, message',
  [
    ('adversarial_schedule', 'ramp', "config.train.adversarial_schedule='ramp'"),
    ('disc_schedule', 'linear', "config.train.disc_schedule='linear'"),
    ('disc_label_smoothing', 1.0, r'must be in \[0, 1\)'),
    ('disc_gradient_penalty', -1.0, 'must be a non-negative number'),
  ],
)
def test_bad_adversary_settings_are_config_errors(field, value, message):
  config = test_config.get_config()
  config.train[field] = value
  with pytest.raises(ValueError, match=message):
    validation.validate(config)


@pytest.mark.parametrize(
  'field, value', [('disc_label_smoothing', 0.1), ('disc_gradient_penalty', 1.0)]
)
def test_game_options_without_a_game_are_config_errors(field, value):
  config = nogan.get_config()
  config.train[field] = value
  with pytest.raises(
    ValueError, match=r'nogan \(model.adversarial=False\) has no modality classifier'
  ):
    validation.validate(config)
  config = moco.get_config()
  config.train[field] = value
  with pytest.raises(ValueError, match="method 'moco' does not read it"):
    validation.validate(config)
  config = test_config.get_config()
  config.train[field] = value
  validation.validate(config)  # TRAJCROSS reads every one.


def test_acmr_reads_the_schedule_but_not_the_classifier_options():
  config = acmr.get_config()
  assert config.train.adversarial_schedule == 'dann'
  config.train.adversarial_schedule = 'constant'
  validation.validate(config)
  config.train.disc_schedule = 'cosine'
  with pytest.raises(ValueError, match="method 'acmr' does not read it"):
    validation.validate(config)


@pytest.mark.parametrize('field', ['train.clean_fraction', 'rerank.clean_fraction'])
def test_a_clean_share_needs_a_hard_dataset_and_its_redraws(field):
  section, name = field.split('.')
  config = test_config.get_config()
  config[section][name] = 1.0
  with pytest.raises(ValueError, match=rf'config.{field}=1.0: must be in \[0, 1\)'):
    validation.validate(config)
  config[section][name] = 0.3
  with pytest.raises(ValueError, match=rf'config.{field}=0.3: needs a hard dataset'):
    validation.validate(config)  # test.py's dataset is the clean synthetic one.
  config.data.name = 'synthetic_hard'
  config[section].redraw_images = False
  with pytest.raises(ValueError, match=f'config.{section}.redraw_images=True'):
    validation.validate(config)
  config[section].redraw_images = True
  validation.validate(config)
  # Scoring a mixed model on the clean dataset with its own flags: nothing trains there.
  config.data.name = 'synthetic'
  config[section].redraw_images = False
  validation.validate(config, 'eval')
  with pytest.raises(ValueError, match='needs a hard dataset'):
    validation.validate(config, 'rerank')


def test_a_bad_refine_factor_is_a_config_error():
  config = test_config.get_config()
  config.index.refine = -1
  with pytest.raises(ValueError, match='config.index.refine=-1: must be a non-negative number'):
    validation.validate(config)
  with pytest.raises(TypeError):  # ml_collections keeps the field an integer.
    config.index.refine = 2.5


@pytest.mark.parametrize('window', [0.0, -0.1])
def test_moco_key_window_must_be_positive(window):
  config = moco.get_config()
  config.train.moco_key_window = window
  with pytest.raises(ValueError, match=rf'config.train.moco_key_window={window}: must be a pos'):
    validation.validate(config)


def test_the_track_scorer_options_are_checked():
  config = test_config.get_config()
  config.rerank.scorer = 'lines'
  with pytest.raises(ValueError, match=r"config.rerank.scorer='lines': must be one of"):
    validation.validate(config)
  config.rerank.scorer = 'pair'
  config.rerank.nll_weight = 1.0
  with pytest.raises(ValueError, match='only the track scorer'):
    validation.validate(config)
  config.rerank.scorer = 'track'
  validation.validate(config)
  config.rerank.hypotheses = 0
  with pytest.raises(ValueError, match='config.rerank.hypotheses=0: must be a positive'):
    validation.validate(config)


def test_the_point_features_are_checked():
  config = test_config.get_config()
  config.rerank.point_features = -1
  with pytest.raises(ValueError, match='config.rerank.point_features=-1: must be'):
    validation.validate(config)
  config.rerank.point_features = 8
  validation.validate(config)
  config.rerank.scorer = 'track'
  with pytest.raises(ValueError, match='only the pair scorer'):
    validation.validate(config)
  config.rerank.scorer = 'pair'
  config.data.window_length = 1
  with pytest.raises(ValueError, match='window_length >= 2'):
    validation.validate(config)
