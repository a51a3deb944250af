"""checked_choice: the value back when it is allowed, else an error that
names the option, the choices and the value."""
import pytest
import torch

from sea_kd.utils.checked_choice import checked_choice


def test_an_allowed_value_is_returned():
    assert checked_choice('layers', 'last', ('all', 'last')) == 'last'
    assert checked_choice('dtype', 'float32', {'float32': 1}) == 'float32'


def test_a_value_outside_names_the_option_the_choices_and_the_value():
    with pytest.raises(ValueError) as error:
        checked_choice('layers', 'first', ('all', 'last'))
    assert str(error.value) == \
        "layers must be one of ('all', 'last'), got 'first'."


def test_a_dict_offers_its_keys():
    with pytest.raises(ValueError, match=r"\('a', 'b'\), got 'c'"):
        checked_choice('x', 'c', {'a': 1, 'b': 2})


def test_the_meaning_of_the_choices_is_in_the_message():
    with pytest.raises(ValueError, match=r"\('all', 'kept'\) \(all: every "
                       r"row\), got 'some'"):
        checked_choice('normaliser', 'some', ('all', 'kept'),
                       'all: every row')


@pytest.mark.parametrize('value', [['all'], {'all': 1}, torch.ones(2), None])
def test_values_of_other_types_are_refused_cleanly(value):
    with pytest.raises(ValueError, match='must be one of'):
        checked_choice('layers', value, ('all', 'last'))
