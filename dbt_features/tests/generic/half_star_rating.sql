{% test half_star_rating(model, column_name) %}
select {{ column_name }} from {{ model }}
where {{ column_name }} is not null
  and ({{ column_name }} < 0.5 or {{ column_name }} > 5 or {{ column_name }} * 2 <> round({{ column_name }} * 2))
{% endtest %}
